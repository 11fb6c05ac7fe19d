// Profile: my picture (upload, remove) and display name. The server checks both and answers the new account.

import * as accountApi from "../../account-api";
import { field, h, replace } from "../../dom";
import { avatar } from "./avatar";
import { busy, form, outcome, section } from "./parts";
import type { Page, SettingsHost } from "./settings";

export function profilePage(host: SettingsHost): Page {
  return { element: h("div", null, pictureBlock(host), nameBlock(host)) };
}

function pictureBlock(host: SettingsHost): HTMLElement {
  const result = outcome();
  const preview = h("div", { class: "avatar-preview" });
  const file = h("input", {
    type: "file",
    class: "sr-only",
    accept: "image/png,image/jpeg,image/gif,image/webp",
    "aria-label": "Upload a picture",
  });
  const upload = h("button", { type: "button", onclick: () => file.click() }, "Upload a picture");
  const remove = h("button", { type: "button" }, "Remove picture");
  const render = (): void => {
    const me = host.account();
    replace(preview, avatar(me, "large"));
    remove.hidden = !me.avatar_url;
  };
  file.addEventListener("change", () => {
    const chosen = file.files?.[0];
    file.value = "";
    if (!chosen) return;
    void busy(upload, result, async () => {
      host.changed(await accountApi.uploadAvatar(chosen));
      render();
      result.done("Your picture is updated.");
    });
  });
  remove.addEventListener("click", () =>
    busy(remove, result, async () => {
      host.changed(await accountApi.removeAvatar());
      render();
      result.done("Your picture is removed.");
    }),
  );
  render();
  return section(
    "Picture",
    h(
      "div",
      { class: "avatar-row" },
      preview,
      h(
        "div",
        null,
        h("div", { class: "settings-buttons" }, upload, remove),
        h("small", { class: "hint" }, "PNG, JPEG, GIF or WebP, up to 2 MB. Everyone in your rooms can see it."),
        file,
      ),
    ),
    result.element,
  );
}

function nameBlock(host: SettingsHost): HTMLElement {
  const result = outcome();
  const me = host.account();
  const name = h("input", {
    name: "display_name",
    value: me.display_name,
    maxlength: 100,
    autocomplete: "name",
    required: true,
  });
  return section(
    "Name",
    form(
      "Save name",
      result,
      async () => {
        const saved = await accountApi.rename(name.value);
        host.changed(saved);
        name.value = saved.display_name;
        result.done(`Saved. People now see you as ${saved.display_name}.`);
      },
      field("Display name", name, "Shown to others instead of your username."),
      h("p", { class: "muted" }, `Username: @${me.username} · Email: ${me.email}`),
    ),
    result.element,
  );
}
