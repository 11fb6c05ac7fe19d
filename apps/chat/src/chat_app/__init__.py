"""The launcher: the only package that imports every service, to compose them."""
