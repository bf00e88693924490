/**
 * `@tollgate/client`: a Tollgate client for browsers and Node.
 *
 * # Layout
 * - `client.ts`: {@link TollgateClient}, the calls and the refresh rules.
 * - `tabs.ts`: refresh coordination between browser tabs (Web Locks + BroadcastChannel).
 * - `storage.ts`: token stores (memory by default) and the token set.
 * - `errors.ts`: {@link TollgateError} and the error codes.
 */

export {
  TollgateClient,
  type ClientOptions,
  type DeviceLogout,
  type LogoutAll,
  type Me,
  type Session,
  type Sessions,
  type User,
} from "./client.js";
export {
  TollgateError,
  isTollgateError,
  SERVER_ERROR_CODES,
  SESSION_ENDING_CODES,
  type ClientErrorCode,
  type ErrorCode,
  type ServerErrorCode,
} from "./errors.js";
export {
  memoryStore,
  webStorageStore,
  type TokenSet,
  type TokenStore,
  type WebStorageOptions,
} from "./storage.js";
export { tabCoordinationAvailable } from "./tabs.js";
