// Boot: restore the session from the refresh cookie, else show sign-in.

import "./style.css";
import { api, refresh } from "./api";
import { AuthScreen } from "./auth";
import { ChatApp } from "./chat";
import type { Profile } from "./types";

function appRoot(): HTMLElement {
  const found = document.getElementById("app");
  if (!found) throw new Error("index.html has no #app element");
  return found;
}

const root = appRoot();

async function signedIn(): Promise<void> {
  try {
    const me = await api<Profile>("GET", "/api/auth/me");
    await new ChatApp(root, me, (notice) => void signedOut(notice)).start();
  } catch (error) {
    await signedOut(
      `Something went wrong loading your rooms: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

async function signedOut(notice?: string): Promise<void> {
  document.body.classList.remove("in-room");
  if (location.pathname !== "/") history.replaceState(null, "", "/");
  await new AuthScreen(root, () => void signedIn()).start(notice);
}

async function boot(): Promise<void> {
  const fragment = location.hash;
  // A provider sign-in that still needs a step comes back with it in the fragment; anything else may be a session.
  if (/mfa_token=|link_required=|oidc_error=/.test(fragment)) return signedOut();
  try {
    if (await refresh()) return signedIn();
    return signedOut();
  } catch {
    return signedOut("The server cannot be reached right now. Check your connection and reload.");
  }
}

void boot();
