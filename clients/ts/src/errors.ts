/**
 * Typed errors. Every Tollgate service answers a failure with
 * `{"error":{"code":"snake_case","message":"…"}}`; the SDK turns that into a {@link TollgateError}
 * whose `code` is one of {@link ErrorCode}, so callers branch on the code, never on the message.
 */

/** Every code the HTTP API returns (`shared/src/error.rs`, README "HTTP API"). */
export const SERVER_ERROR_CODES = [
  "invalid_input",
  "email_taken",
  "invalid_credentials",
  "rate_limited",
  "invalid_refresh_token",
  "refresh_token_reused",
  "token_missing",
  "token_malformed",
  "token_signature",
  "token_expired",
  "token_claims",
  "token_revoked",
  "token_version",
  "user_unknown",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "payload_too_large",
  "unavailable",
  "internal",
] as const;

export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];

/**
 * Codes the SDK raises itself: `network_error` (no answer: connection refused, reset, timed
 * out), `invalid_response` (an answer that is not the documented JSON, e.g. a proxy's HTML page)
 * and `not_logged_in` (an authenticated call with no tokens in the store).
 */
export type ClientErrorCode = "network_error" | "invalid_response" | "not_logged_in";

export type ErrorCode = ServerErrorCode | ClientErrorCode;

/**
 * The rejections after which a device session is over: the SDK clears its tokens and calls
 * `onSessionEnd`. `token_expired` is not among them (a refresh fixes it).
 */
export const SESSION_ENDING_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "token_revoked",
  "token_version",
  "user_unknown",
  "invalid_refresh_token",
  "refresh_token_reused",
]);

export class TollgateError extends Error {
  override readonly name = "TollgateError";
  /** The documented code, or one of the SDK's own. */
  readonly code: ErrorCode;
  /** The HTTP status; 0 when there was no usable answer. */
  readonly status: number;
  /** Seconds from `Retry-After` (429 `rate_limited`). */
  readonly retryAfter: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    status: number,
    options: { retryAfter?: number | undefined; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.retryAfter = options.retryAfter;
  }

  /** Whether this rejection means the device session is over (see {@link SESSION_ENDING_CODES}). */
  get endsSession(): boolean {
    return SESSION_ENDING_CODES.has(this.code);
  }

  /**
   * The error a non-2xx response stands for. Reads the body; a body that is not the documented
   * envelope (or names a code this SDK does not know) becomes `invalid_response`.
   */
  static async fromResponse(response: Response): Promise<TollgateError> {
    const text = await response.text().catch(() => "");
    const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
    const parsed = parseErrorBody(text);
    if (parsed) {
      return new TollgateError(parsed.code, parsed.message, response.status, { retryAfter });
    }
    return new TollgateError(
      "invalid_response",
      `HTTP ${response.status} without the documented error body`,
      response.status,
      { retryAfter },
    );
  }
}

/** Whether `e` is a {@link TollgateError}, optionally with one of `codes`. */
export function isTollgateError(e: unknown, ...codes: ErrorCode[]): e is TollgateError {
  return e instanceof TollgateError && (codes.length === 0 || codes.includes(e.code));
}

function parseErrorBody(text: string): { code: ServerErrorCode; message: string } | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  const error = (body as { error: unknown }).error;
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code !== "string" || !(SERVER_ERROR_CODES as readonly string[]).includes(code)) {
    return undefined;
  }
  return { code: code as ServerErrorCode, message: typeof message === "string" ? message : code };
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
