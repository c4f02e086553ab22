// Errors raised by the web client. Whose fault is in the class:
// ProtocolError and DeltaError: the server sent something that is not our protocol
// (the client closes the connection and does not retry). Our misuse throws plain Error.

/**
 * A malformed message from the server: the server's fault. `code` is the ERROR code a
 * receiver would answer with (1 malformed, 2 unknown message type).
 */
export class ProtocolError extends Error {
  /** @param {string} message @param {number} [code] */
  constructor(message, code = 1) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/** A DELTA that is malformed or does not apply to the replica (the server's fault). */
export class DeltaError extends ProtocolError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "DeltaError";
  }
}
