/**
 * Browser tabs of one origin share one device session, so they must share its refresh: two tabs
 * that each rotate the same refresh token would fork the chain, and the second rotation is a
 * replay the server answers by revoking the session (`refresh_token_reused`).
 *
 * Rule: a tab refreshes only while holding the Web Lock `tollgate-refresh:<baseUrl>`. Before it
 * releases the lock it posts an `outcome` message with the tokens it now holds on a
 * BroadcastChannel; every tab applies the newest token set it hears of. A tab that had to wait
 * for the lock first waits (briefly) for the outcome of the tab before it, because the lock grant
 * and the message travel separately and may arrive in either order; then it finds the new tokens
 * in its store and does not refresh at all. The server's grace window (a repeat of the last
 * refresh gets the same answer) covers what is left: a holder that crashed mid-refresh.
 *
 * Tokens are handed over in memory, so a new tab asks the open ones (`hello`) instead of reading
 * a refresh token from storage.
 */

import type { TokenSet } from "./storage.js";

type TabMessage =
  | { type: "hello" }
  | { type: "tokens"; tokens: TokenSet }
  | { type: "outcome"; tokens: TokenSet | null }
  | { type: "cleared"; tokenId: string };

/** How long a tab that waited for the refresh lock waits for its predecessor's outcome. */
const OUTCOME_WAIT_MS = 1000;

export interface TabHooks {
  /** This tab's current tokens. */
  current(): Promise<TokenSet | null>;
  /** Keep `tokens` if they are newer than the current ones. */
  adopt(tokens: TokenSet): Promise<void>;
  /** Another tab's device session `tokenId` ended. */
  cleared(tokenId: string): Promise<void>;
}

/** Whether this realm has both Web Locks and BroadcastChannel (a browser; not Node 20). */
export function tabCoordinationAvailable(): boolean {
  const nav = (globalThis as { navigator?: { locks?: LockManager } }).navigator;
  return typeof BroadcastChannel === "function" && typeof nav?.locks?.request === "function";
}

export class TabCoordinator {
  private readonly channel: BroadcastChannel;
  private readonly lockName: string;
  private readonly locks: LockManager;
  /** Outcome messages received so far, and who waits for the next one. */
  private outcomes = 0;
  private outcomeWaiters: Array<() => void> = [];
  private tokenWaiters: Array<() => void> = [];
  /** Incoming messages are applied one at a time, in arrival order. */
  private applying: Promise<void> = Promise.resolve();

  constructor(
    scope: string,
    private readonly hooks: TabHooks,
  ) {
    this.lockName = `tollgate-refresh:${scope}`;
    this.locks = (globalThis as unknown as { navigator: { locks: LockManager } }).navigator.locks;
    this.channel = new BroadcastChannel(`tollgate:${scope}`);
    this.channel.onmessage = (event: MessageEvent<TabMessage>) => {
      this.applying = this.applying.then(() => this.receive(event.data)).catch(() => undefined);
    };
  }

  /**
   * Runs `refresh` while holding the cross-tab refresh lock, and tells the other tabs the result
   * before letting go of it.
   */
  async withRefreshLock<T>(refresh: () => Promise<T>): Promise<T> {
    const seen = this.outcomes;
    const uncontended = await this.locks.request(this.lockName, { ifAvailable: true }, (lock) =>
      lock ? this.holding(refresh).then((value) => ({ value })) : null,
    );
    if (uncontended) return uncontended.value;
    return this.locks.request(this.lockName, async () => {
      await this.outcomeSince(seen);
      return this.holding(refresh);
    });
  }

  /** Tells the other tabs about tokens this tab obtained outside a refresh (a login). */
  announce(tokens: TokenSet): void {
    this.post({ type: "tokens", tokens });
  }

  /** Tells the other tabs that device session `tokenId` is over. */
  announceCleared(tokenId: string): void {
    this.post({ type: "cleared", tokenId });
  }

  /** Asks the open tabs for their tokens; true if some arrived within `timeoutMs`. */
  async requestTokens(timeoutMs: number): Promise<boolean> {
    if (await this.hooks.current()) return true;
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.tokenWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    this.post({ type: "hello" });
    return arrived;
  }

  close(): void {
    this.channel.close();
  }

  private async holding<T>(refresh: () => Promise<T>): Promise<T> {
    try {
      return await refresh();
    } finally {
      this.post({ type: "outcome", tokens: await this.hooks.current().catch(() => null) });
    }
  }

  /** Resolves once an outcome newer than `seen` has been applied, or after a bounded wait. */
  private outcomeSince(seen: number): Promise<void> {
    if (this.outcomes > seen) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, OUTCOME_WAIT_MS);
      this.outcomeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async receive(message: TabMessage): Promise<void> {
    switch (message.type) {
      case "hello": {
        const tokens = await this.hooks.current();
        if (tokens) this.post({ type: "tokens", tokens });
        return;
      }
      case "tokens":
        await this.hooks.adopt(message.tokens);
        this.wake("tokenWaiters");
        return;
      case "outcome":
        if (message.tokens) await this.hooks.adopt(message.tokens);
        this.outcomes += 1;
        this.wake("outcomeWaiters");
        return;
      case "cleared":
        await this.hooks.cleared(message.tokenId);
        return;
    }
  }

  private wake(which: "outcomeWaiters" | "tokenWaiters"): void {
    const waiters = this[which];
    this[which] = [];
    for (const wake of waiters) wake();
  }

  private post(message: TabMessage): void {
    try {
      this.channel.postMessage(message);
    } catch {
      // A closed channel (the client was closed): nobody left to tell.
    }
  }
}
