// gameserver browser client: public entry point (bundled into dist/gameclient.js).
export { GameClient, CLIENT_PROTOCOL_CLOSE } from "./client.js";
export {
  MsgType,
  CloseCode,
  ErrorCode,
  CLOSE_REASONS,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  ProtocolError,
  decodeMessage,
  encodeMessage,
  encodeHello,
  encodeResume,
  encodeInput,
  encodePing,
  encodeLeave,
  encodeCamera,
} from "./messages.js";
export { ViewReplica } from "./view.js";
export { unpack, LIMITS } from "./messages.js";
export { DeltaError, DTYPES, WireField, WireSchema, Replica, decodeDelta, decodeIdList } from "./delta.js";
export { InterpolationBuffer, interpolate } from "./interpolation.js";
export { AckTracker, Predictor } from "./prediction.js";
export { Stats } from "./stats.js";
