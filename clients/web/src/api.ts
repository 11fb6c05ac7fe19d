// HTTP to the product's services at this origin. Errors are RFC 9457 problem documents with a stable `code`.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export interface Tokens {
  access_token: string;
  expires_at: string;
  session_id: string;
  user_id: string;
}

export interface MfaRequired {
  mfa_required: true;
  mfa_token: string;
}

let accessToken: string | null = null;
let refreshing: Promise<Tokens | null> | null = null;
const tokenListeners: ((tokens: Tokens | null) => void)[] = [];

export function token(): string | null {
  return accessToken;
}

export function onTokens(listener: (tokens: Tokens | null) => void): void {
  tokenListeners.push(listener);
}

export function setTokens(tokens: Tokens | null): void {
  accessToken = tokens?.access_token ?? null;
  for (const listener of tokenListeners) listener(tokens);
}

/** Trade the HttpOnly refresh cookie (scoped to /api/auth) for a new access token; null when signed out.
 * Throws when the server cannot be reached (the session may still be fine). Refresh tokens rotate and a spent
 * one presented again ends the session, so refreshes are serialised across this browser's tabs (Web Locks):
 * each one sends the newest cookie. */
export function refresh(): Promise<Tokens | null> {
  refreshing ??= (async () => {
    try {
      const call = async (): Promise<Tokens | null> => {
        const response = await fetch("/api/auth/token/refresh", { method: "POST", credentials: "same-origin" });
        if (!response.ok) {
          setTokens(null);
          return null;
        }
        const tokens = (await response.json()) as Tokens;
        setTokens(tokens);
        return tokens;
      };
      return navigator.locks ? await navigator.locks.request("chat-token-refresh", call) : await call();
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function problem(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || "Request failed";
  let retryAfter: number | undefined;
  try {
    const body = (await response.json()) as { code?: string; detail?: string; title?: string; retry_after?: number };
    code = body.code ?? code;
    message = body.detail ?? body.title ?? message;
    retryAfter = body.retry_after;
  } catch {
    // not a problem document
  }
  return new ApiError(response.status, code, message, retryAfter);
}

export interface RequestOptions {
  body?: unknown;
  raw?: BodyInit;
  headers?: Record<string, string>;
}

/** One call; an expired access token is refreshed once and the call repeated. */
export async function request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
    if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
    let body: BodyInit | undefined = options.raw;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    let response: Response;
    try {
      response = await fetch(path, { method, headers, body, credentials: "same-origin" });
    } catch {
      throw new ApiError(0, "network", "The server cannot be reached. Check your connection.");
    }
    if (response.ok) return response;
    const error = await problem(response);
    if (
      attempt === 0 &&
      response.status === 401 &&
      accessToken &&
      (error.code.startsWith("token_") || error.code === "unauthenticated")
    ) {
      if (await refresh().catch(() => null)) continue;
    }
    throw error;
  }
}

export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(method, path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}
