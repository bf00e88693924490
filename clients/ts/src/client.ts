/**
 * The client: login, an authenticated `fetch`, refresh, the four logouts, sessions and `me`.
 *
 * Refresh rules (the same for every Tollgate client, see README "Native mobile apps"):
 * 1. Refresh shortly before the access token expires, and on a 401 `token_expired`; then retry
 *    the request once.
 * 2. Only one refresh in flight: concurrent calls share it (in this process or page), and
 *    browser tabs take turns through a Web Lock and share the result (see `tabs.ts`).
 * 3. A refresh whose answer was lost (network error, timeout, 5xx) is retried with the *same*
 *    refresh token, within the server's grace window, where the server repeats its answer.
 *    After the window a repeat is a replay and ends the session, so the SDK stops retrying.
 */

import { TollgateError } from "./errors.js";
import { memoryStore, type TokenSet, type TokenStore } from "./storage.js";
import { TabCoordinator, tabCoordinationAvailable } from "./tabs.js";

export interface ClientOptions {
  /** The API's base URL (the edge, or the origin directly). Default: the page's origin. */
  baseUrl?: string;
  /** Where tokens live. Default: {@link memoryStore}. */
  store?: TokenStore;
  /** The `fetch` to use. Default: the global one. */
  fetch?: typeof fetch;
  /** Refresh when the access token has less than this left (ms; default 30 000, at most half its lifetime). */
  refreshLeewayMs?: number;
  /** The server's `REFRESH_GRACE_SECS` in ms (default 10 000): retries of a lost refresh stay inside it. */
  graceMs?: number;
  /** Retries of a refresh whose answer was lost (default 2). */
  refreshRetries?: number;
  /** A refresh without an answer after this long counts as lost (ms; default 5 000). */
  refreshTimeoutMs?: number;
  /**
   * Coordinate refreshes with other tabs through Web Locks and BroadcastChannel. Default: on
   * where both exist (browsers), off elsewhere (Node: the single flight is per process).
   */
  crossTab?: boolean;
  /** The clock, in ms (default `Date.now`). */
  now?: () => number;
  /** Called once when the device session ends on the server's word (revoked, reused, …). */
  onSessionEnd?: (error: TollgateError) => void;
}

export interface User {
  id: string;
  email: string;
  name: string | null;
}

export interface Me extends User {
  token_version: number;
}

export interface Session {
  id: number;
  /** The session's live access token, or null when it has none right now. */
  jti: string | null;
  token_id: string;
  device_name: string | null;
  ip: string | null;
  user_agent: string | null;
  created_at: string;
  last_seen_at: string;
  is_current: boolean;
  token_version: number;
}

export interface Sessions {
  sessions: Session[];
  total: number;
  currentJti: string;
}

/** What `logout`, `logout-device-jti` and `logout-device` answer. */
export interface DeviceLogout {
  token_id: string;
  revoked_access_tokens: number;
}

export interface LogoutAll {
  token_version: number;
  revoked_sessions: number;
  revoked_access_tokens: number;
}

/** The first retry of a lost refresh waits this long, the next twice as long, … */
const RETRY_BACKOFF_MS = 200;
/** Retries stop this long before the grace window closes (clock differences, slow answers). */
const GRACE_MARGIN_MS = 2000;

export class TollgateClient {
  readonly baseUrl: string;
  private readonly store: TokenStore;
  private readonly fetchImpl: typeof fetch;
  private readonly leewayMs: number;
  private readonly graceMs: number;
  private readonly refreshRetries: number;
  private readonly refreshTimeoutMs: number;
  private readonly now: () => number;
  private readonly onSessionEnd: ((error: TollgateError) => void) | undefined;
  private readonly tabs: TabCoordinator | undefined;
  /** The refresh in flight in this process or page; every caller that needs one shares it. */
  private inflight: Promise<TokenSet> | null = null;

  constructor(options: ClientOptions = {}) {
    const base = options.baseUrl ?? (globalThis as { location?: Location }).location?.origin;
    if (!base) throw new TypeError("TollgateClient: baseUrl is required outside a browser");
    this.baseUrl = new URL(base).origin + new URL(base).pathname.replace(/\/+$/, "");
    this.store = options.store ?? memoryStore();
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.leewayMs = options.refreshLeewayMs ?? 30_000;
    this.graceMs = options.graceMs ?? 10_000;
    this.refreshRetries = options.refreshRetries ?? 2;
    this.refreshTimeoutMs = options.refreshTimeoutMs ?? 5_000;
    this.now = options.now ?? Date.now;
    this.onSessionEnd = options.onSessionEnd;
    const crossTab = options.crossTab ?? tabCoordinationAvailable();
    if (crossTab && !tabCoordinationAvailable()) {
      throw new TypeError("TollgateClient: crossTab needs navigator.locks and BroadcastChannel");
    }
    this.tabs = crossTab
      ? new TabCoordinator(this.baseUrl, {
          current: async () => this.store.load(),
          adopt: (tokens) => this.adopt(tokens),
          cleared: (tokenId) => this.forget(tokenId),
        })
      : undefined;
  }

  // ---- accounts -------------------------------------------------------------------------------

  /** `POST /api/users/register`. */
  async register(input: { email: string; password: string; name?: string }): Promise<User> {
    return this.anonymous<User>("/api/users/register", input);
  }

  /** `POST /api/users/login`; keeps the tokens and hands them to the other tabs. */
  async login(input: { email: string; password: string; deviceName?: string }): Promise<TokenSet> {
    const body: Record<string, string> = { email: input.email, password: input.password };
    if (input.deviceName !== undefined) body.device_name = input.deviceName;
    const tokens = this.tokenSet(await this.anonymous<unknown>("/api/users/login", body));
    await this.store.save(tokens);
    this.tabs?.announce(tokens);
    return tokens;
  }

  /** The tokens in the store, if any. */
  async tokens(): Promise<TokenSet | null> {
    return this.store.load();
  }

  /** Asks other open tabs for their tokens (browsers); true if this tab now has some. */
  async syncFromOtherTabs(timeoutMs = 300): Promise<boolean> {
    if (!this.tabs) return (await this.store.load()) !== null;
    return this.tabs.requestTokens(timeoutMs);
  }

  /** Stops listening to other tabs. */
  close(): void {
    this.tabs?.close();
  }

  // ---- authenticated calls --------------------------------------------------------------------

  /**
   * `fetch` with `Authorization: Bearer`, for paths of this API (`/api/…` or a URL on
   * `baseUrl`). Refreshes first when the access token is about to expire; on a 401
   * `token_expired` refreshes and retries once; on a 401 for a token that another caller has
   * since replaced, retries once with the new one. Returns the response like `fetch` does (a
   * 4xx is not thrown); throws a {@link TollgateError} only when it could not ask at all
   * (`not_logged_in`, `network_error`, a failed refresh).
   *
   * The body must be re-sendable (a string, `FormData`, `Blob`, `URLSearchParams`, …): it may
   * be sent twice.
   */
  async fetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const url = this.url(input);
    const used = await this.freshTokens();
    const first = await this.send(url, init, used.accessToken);
    if (first.status !== 401) return first;

    const rejection = await TollgateError.fromResponse(first.clone());
    const current = await this.store.load();
    let retryWith: TokenSet | null = null;
    if (current && current.accessToken !== used.accessToken) {
      retryWith = current; // refreshed meanwhile: the old token was retired, not the session
    } else if (rejection.code === "token_expired") {
      retryWith = await this.refreshFrom(used);
    } else {
      await this.endIfFinal(rejection, used);
      return first;
    }
    const second = await this.send(url, init, retryWith.accessToken);
    if (second.status === 401) {
      await this.endIfFinal(await TollgateError.fromResponse(second.clone()), retryWith);
    }
    return second;
  }

  /** Like {@link fetch}, but throws a {@link TollgateError} for a non-2xx and returns `data`. */
  async request<T>(input: string | URL, init: RequestInit = {}): Promise<T> {
    return this.data<T>(await this.fetch(input, init));
  }

  /** `GET /api/users/me`. */
  me(): Promise<Me> {
    return this.request<Me>("/api/users/me");
  }

  /** `GET /api/users/sessions`: this user's live device sessions. */
  async sessions(): Promise<Sessions> {
    const response = await this.fetch("/api/users/sessions");
    if (!response.ok) throw await TollgateError.fromResponse(response);
    const body = (await this.json(response)) as {
      data?: Session[];
      meta?: { total?: number; current_jti?: string };
    };
    if (!Array.isArray(body.data) || typeof body.meta?.total !== "number") {
      throw new TollgateError("invalid_response", "sessions answer without data/meta", response.status);
    }
    return { sessions: body.data, total: body.meta.total, currentJti: body.meta.current_jti ?? "" };
  }

  /** Forces a refresh now (single-flight like the automatic one). */
  async refresh(): Promise<TokenSet> {
    const tokens = await this.store.load();
    if (!tokens) throw notLoggedIn();
    return this.refreshFrom(tokens);
  }

  // ---- the four logouts -----------------------------------------------------------------------
  // Tokens are dropped locally once the server has confirmed. A logout that did not reach the
  // server throws and keeps them, so the caller can try again: only the server can revoke.

  /** `POST /api/users/logout`: this device's tokens die. */
  async logout(): Promise<DeviceLogout> {
    const tokens = await this.requireTokens();
    const result = await this.request<DeviceLogout>("/api/users/logout", { method: "POST" });
    await this.forget(tokens.tokenId, true);
    return result;
  }

  /** `POST /api/users/logout-all`: every device of this user, this one included. */
  async logoutAll(): Promise<LogoutAll> {
    const tokens = await this.requireTokens();
    const result = await this.request<LogoutAll>("/api/users/logout-all", { method: "POST" });
    await this.forget(tokens.tokenId, true);
    return result;
  }

  /** `POST /api/users/logout-device-jti/{jti}`: the device holding access token `jti`. */
  async logoutDeviceJti(jti: string): Promise<DeviceLogout> {
    const result = await this.request<DeviceLogout>(
      `/api/users/logout-device-jti/${encodeURIComponent(jti)}`,
      { method: "POST" },
    );
    await this.forget(result.token_id, true);
    return result;
  }

  /** `POST /api/users/logout-device/{tokenId}`: device session `tokenId`. */
  async logoutDevice(tokenId: string): Promise<DeviceLogout> {
    const result = await this.request<DeviceLogout>(
      `/api/users/logout-device/${encodeURIComponent(tokenId)}`,
      { method: "POST" },
    );
    await this.forget(tokenId, true);
    return result;
  }

  // ---- refresh --------------------------------------------------------------------------------

  private async freshTokens(): Promise<TokenSet> {
    const tokens = await this.requireTokens();
    return this.isFresh(tokens) ? tokens : this.refreshFrom(tokens);
  }

  private isFresh(tokens: TokenSet): boolean {
    const lifetime = tokens.expiresIn * 1000;
    const leeway = Math.min(this.leewayMs, lifetime / 2);
    return this.now() < tokens.obtainedAt + lifetime - leeway;
  }

  /** One refresh in flight per client; across tabs, one at a time under the Web Lock. */
  private refreshFrom(stale: TokenSet): Promise<TokenSet> {
    if (this.inflight) return this.inflight;
    const run = () => this.refreshUnlessDone(stale);
    const flight = (this.tabs ? this.tabs.withRefreshLock(run) : run()).finally(() => {
      if (this.inflight === flight) this.inflight = null;
    });
    this.inflight = flight;
    return flight;
  }

  /** Refreshes `stale` unless the store shows that someone (another tab) already did. */
  private async refreshUnlessDone(stale: TokenSet): Promise<TokenSet> {
    const current = await this.store.load();
    if (!current) throw notLoggedIn();
    if (current.refreshToken !== stale.refreshToken && this.isFresh(current)) return current;
    try {
      const fresh = await this.postRefresh(current.refreshToken);
      await this.store.save(fresh);
      return fresh;
    } catch (e) {
      if (e instanceof TollgateError) await this.endIfFinal(e, current);
      throw e;
    }
  }

  /** `POST /api/users/refresh`, retried with the same token while its answer is lost. */
  private async postRefresh(refreshToken: string): Promise<TokenSet> {
    const deadline = this.now() + this.graceMs - GRACE_MARGIN_MS;
    for (let attempt = 0; ; attempt += 1) {
      let failure: TollgateError;
      try {
        const response = await this.fetchImpl(this.url("/api/users/refresh"), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ refresh_token: refreshToken }),
          signal: AbortSignal.timeout(this.refreshTimeoutMs),
        });
        if (response.ok) {
          const body = await response.text().catch(() => null);
          const data = body === null ? undefined : dataOf(body);
          if (data !== undefined) return this.tokenSet(data);
          failure = new TollgateError("invalid_response", "refresh answer was cut off", response.status);
        } else {
          failure = await TollgateError.fromResponse(response);
          if (response.status < 500) throw failure; // the server decided: do not ask again
        }
      } catch (e) {
        if (e instanceof TollgateError) throw e;
        failure = networkError(e);
      }
      const backoff = RETRY_BACKOFF_MS * 2 ** attempt;
      if (attempt >= this.refreshRetries || this.now() + backoff >= deadline) throw failure;
      await sleep(backoff);
    }
  }

  // ---- session end ----------------------------------------------------------------------------

  /** After a session-ending rejection of `used`: drop the tokens, tell the tabs and the app. */
  private async endIfFinal(error: TollgateError, used: TokenSet): Promise<void> {
    if (!error.endsSession) return;
    const current = await this.store.load();
    if (!current || current.tokenId !== used.tokenId) return; // already gone, or a new login
    await this.forget(used.tokenId, true);
    this.onSessionEnd?.(error);
  }

  /** Drops the tokens if they belong to device session `tokenId`. */
  private async forget(tokenId: string, announce = false): Promise<void> {
    const current = await this.store.load();
    if (current?.tokenId !== tokenId) return;
    await this.store.clear();
    if (announce) this.tabs?.announceCleared(tokenId);
  }

  /** Keeps tokens another tab obtained, if they are newer than ours (or we have none). */
  private async adopt(tokens: TokenSet): Promise<void> {
    const current = await this.store.load();
    if (!current || tokens.obtainedAt > current.obtainedAt) await this.store.save(tokens);
  }

  // ---- HTTP -----------------------------------------------------------------------------------

  /** A URL on this API; the bearer token is never sent anywhere else. */
  private url(input: string | URL): string {
    const url = new URL(
      typeof input === "string" && input.startsWith("/") ? this.baseUrl + input : input,
    );
    if (!url.href.startsWith(this.baseUrl + "/")) {
      throw new TypeError(`TollgateClient: ${url.origin}${url.pathname} is not under ${this.baseUrl}`);
    }
    return url.href;
  }

  private async send(url: string, init: RequestInit, accessToken: string): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${accessToken}`);
    try {
      return await this.fetchImpl(url, { ...init, headers });
    } catch (e) {
      if (init.signal?.aborted) throw e; // the caller's own abort stays an AbortError
      throw networkError(e);
    }
  }

  private async anonymous<T>(path: string, body: unknown): Promise<T> {
    let response: Response;
    try {
      response = await this.fetchImpl(this.url(path), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw networkError(e);
    }
    return this.data<T>(response);
  }

  private async data<T>(response: Response): Promise<T> {
    if (!response.ok) throw await TollgateError.fromResponse(response);
    const body = (await this.json(response)) as { data?: T };
    if (body.data === undefined) {
      throw new TollgateError("invalid_response", "answer without data", response.status);
    }
    return body.data;
  }

  private async json(response: Response): Promise<unknown> {
    try {
      return await response.json();
    } catch (e) {
      throw new TollgateError("invalid_response", "answer is not JSON", response.status, { cause: e });
    }
  }

  private async requireTokens(): Promise<TokenSet> {
    const tokens = await this.store.load();
    if (!tokens) throw notLoggedIn();
    return tokens;
  }

  /** Login's and refresh's `data` as a {@link TokenSet}. */
  private tokenSet(data: unknown): TokenSet {
    const d = data as Record<string, unknown>;
    if (
      typeof d?.access_token !== "string" ||
      typeof d.refresh_token !== "string" ||
      typeof d.jti !== "string" ||
      typeof d.token_id !== "string" ||
      typeof d.expires_in !== "number"
    ) {
      throw new TollgateError("invalid_response", "token answer is missing fields", 200);
    }
    return {
      accessToken: d.access_token,
      refreshToken: d.refresh_token,
      jti: d.jti,
      tokenId: d.token_id,
      expiresIn: d.expires_in,
      obtainedAt: this.now(),
    };
  }
}

function dataOf(text: string): unknown {
  try {
    return (JSON.parse(text) as { data?: unknown }).data;
  } catch {
    return undefined;
  }
}

function notLoggedIn(): TollgateError {
  return new TollgateError("not_logged_in", "no tokens: log in first", 0);
}

function networkError(cause: unknown): TollgateError {
  return new TollgateError("network_error", "no answer from the server", 0, { cause });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
