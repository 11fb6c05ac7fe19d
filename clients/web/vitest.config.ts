import { defineConfig } from "vitest/config";

// `npm test` (and `make test`): the unit tests next to the code they test. They run in Node without a DOM: what
// they test (state/, markdown) is pure.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
