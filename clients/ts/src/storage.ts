/**
 * Where the tokens live between calls. The store is the source of truth: before deciding that a
 * refresh is needed, or that a 401 is final, the client re-reads it, so a store shared by several
 * clients (another tab, another process through a file or the keychain) sees their rotations.
 *
 * The default is {@link memoryStore}: nothing survives a reload, and nothing is readable by other
 * scripts from storage. In a browser, other tabs hand their tokens over through a
 * BroadcastChannel (see `TollgateClient.syncFromOtherTabs`), so a new tab needs no stored
 * refresh token. {@link webStorageStore} keeps only the access token unless told otherwise:
 * anything in `localStorage`/`sessionStorage` is readable by any script on the origin (XSS), and a
 * refresh token there is a whole device session's lifetime, not 15 minutes.
 */

/** One device session's tokens, as the login or refresh answer gave them. */
export interface TokenSet {
  accessToken: string;
  refreshToken: string;
  /** The access token's `jti` (what `logout-device-jti` names). */
  jti: string;
  /** The device session; stable across refreshes (what `logout-device` names). */
  tokenId: string;
  /** The access token's lifetime in seconds, from `expires_in`. */
  expiresIn: number;
  /**
   * When the answer arrived, in milliseconds of the client's clock. The expiry is computed from
   * this and `expiresIn` rather than from the JWT's `exp`, so a client clock that is off does not
   * matter; it also orders token sets handed between tabs (newest wins).
   */
  obtainedAt: number;
}

/** A token store. Methods may return promises (a keychain, IndexedDB, a file). */
export interface TokenStore {
  load(): TokenSet | null | Promise<TokenSet | null>;
  save(tokens: TokenSet): void | Promise<void>;
  clear(): void | Promise<void>;
}

/** Tokens in this JavaScript realm's memory only (the default). */
export function memoryStore(initial: TokenSet | null = null): TokenStore {
  let tokens = initial;
  return {
    load: () => tokens,
    save: (next) => {
      tokens = next;
    },
    clear: () => {
      tokens = null;
    },
  };
}

export interface WebStorageOptions {
  /** The storage key (default `tollgate.tokens`). */
  key?: string;
  /**
   * Also keep the refresh token in `storage` (default `false`). Opt in only if surviving a reload
   * matters more to you than keeping a device session's secret away from every script on the
   * origin; with `false` the refresh token is kept in memory and a reload needs another tab or a
   * new login once the access token has expired.
   */
  persistRefreshToken?: boolean;
}

/**
 * Tokens in a Web Storage area, e.g. `sessionStorage`. By default only the access token (and its
 * metadata) goes to storage; the refresh token stays in memory.
 */
export function webStorageStore(storage: Storage, options: WebStorageOptions = {}): TokenStore {
  const key = options.key ?? "tollgate.tokens";
  const persistRefresh = options.persistRefreshToken ?? false;
  let refreshInMemory: { tokenId: string; refreshToken: string } | null = null;
  return {
    load() {
      const raw = storage.getItem(key);
      if (raw === null) return null;
      let stored: Partial<TokenSet>;
      try {
        stored = JSON.parse(raw) as Partial<TokenSet>;
      } catch {
        return null;
      }
      const refreshToken =
        stored.refreshToken ??
        (refreshInMemory?.tokenId === stored.tokenId ? refreshInMemory?.refreshToken : undefined);
      if (
        typeof stored.accessToken !== "string" ||
        typeof refreshToken !== "string" ||
        typeof stored.jti !== "string" ||
        typeof stored.tokenId !== "string" ||
        typeof stored.expiresIn !== "number" ||
        typeof stored.obtainedAt !== "number"
      ) {
        return null;
      }
      return { ...(stored as TokenSet), refreshToken };
    },
    save(tokens) {
      const { refreshToken, ...rest } = tokens;
      refreshInMemory = { tokenId: tokens.tokenId, refreshToken };
      storage.setItem(key, JSON.stringify(persistRefresh ? tokens : rest));
    },
    clear() {
      refreshInMemory = null;
      storage.removeItem(key);
    },
  };
}
