// gameserver web client (dist bundle: built by clients/web/build.mjs from src/; do not edit)
var __defProp = Object.defineProperty;
var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);

// node_modules/@msgpack/msgpack/dist.esm/utils/utf8.mjs
function utf8Count(str2) {
  const strLength = str2.length;
  let byteLength = 0;
  let pos = 0;
  while (pos < strLength) {
    let value = str2.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      byteLength++;
      continue;
    } else if ((value & 4294965248) === 0) {
      byteLength += 2;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str2.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        byteLength += 3;
      } else {
        byteLength += 4;
      }
    }
  }
  return byteLength;
}
function utf8EncodeJs(str2, output, outputOffset) {
  const strLength = str2.length;
  let offset = outputOffset;
  let pos = 0;
  while (pos < strLength) {
    let value = str2.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      output[offset++] = value;
      continue;
    } else if ((value & 4294965248) === 0) {
      output[offset++] = value >> 6 & 31 | 192;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str2.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        output[offset++] = value >> 12 & 15 | 224;
        output[offset++] = value >> 6 & 63 | 128;
      } else {
        output[offset++] = value >> 18 & 7 | 240;
        output[offset++] = value >> 12 & 63 | 128;
        output[offset++] = value >> 6 & 63 | 128;
      }
    }
    output[offset++] = value & 63 | 128;
  }
}
var sharedTextEncoder = new TextEncoder();
var TEXT_ENCODER_THRESHOLD = 50;
function utf8EncodeTE(str2, output, outputOffset) {
  sharedTextEncoder.encodeInto(str2, output.subarray(outputOffset));
}
function utf8Encode(str2, output, outputOffset) {
  if (str2.length > TEXT_ENCODER_THRESHOLD) {
    utf8EncodeTE(str2, output, outputOffset);
  } else {
    utf8EncodeJs(str2, output, outputOffset);
  }
}
var CHUNK_SIZE = 4096;
function utf8DecodeJs(bytes, inputOffset, byteLength) {
  let offset = inputOffset;
  const end = offset + byteLength;
  const units = [];
  let result = "";
  while (offset < end) {
    const byte1 = bytes[offset++];
    if ((byte1 & 128) === 0) {
      units.push(byte1);
    } else if ((byte1 & 224) === 192) {
      const byte2 = bytes[offset++] & 63;
      units.push((byte1 & 31) << 6 | byte2);
    } else if ((byte1 & 240) === 224) {
      const byte2 = bytes[offset++] & 63;
      const byte3 = bytes[offset++] & 63;
      units.push((byte1 & 31) << 12 | byte2 << 6 | byte3);
    } else if ((byte1 & 248) === 240) {
      const byte2 = bytes[offset++] & 63;
      const byte3 = bytes[offset++] & 63;
      const byte4 = bytes[offset++] & 63;
      let unit = (byte1 & 7) << 18 | byte2 << 12 | byte3 << 6 | byte4;
      if (unit > 65535) {
        unit -= 65536;
        units.push(unit >>> 10 & 1023 | 55296);
        unit = 56320 | unit & 1023;
      }
      units.push(unit);
    } else {
      units.push(byte1);
    }
    if (units.length >= CHUNK_SIZE) {
      result += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  if (units.length > 0) {
    result += String.fromCharCode(...units);
  }
  return result;
}
var sharedTextDecoder = new TextDecoder();
var TEXT_DECODER_THRESHOLD = 200;
function utf8DecodeTD(bytes, inputOffset, byteLength) {
  const stringBytes = bytes.subarray(inputOffset, inputOffset + byteLength);
  return sharedTextDecoder.decode(stringBytes);
}
function utf8Decode(bytes, inputOffset, byteLength) {
  if (byteLength > TEXT_DECODER_THRESHOLD) {
    return utf8DecodeTD(bytes, inputOffset, byteLength);
  } else {
    return utf8DecodeJs(bytes, inputOffset, byteLength);
  }
}

// node_modules/@msgpack/msgpack/dist.esm/ExtData.mjs
var ExtData = class {
  constructor(type, data) {
    __publicField(this, "type");
    __publicField(this, "data");
    this.type = type;
    this.data = data;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/DecodeError.mjs
var DecodeError = class _DecodeError extends Error {
  constructor(message) {
    super(message);
    const proto = Object.create(_DecodeError.prototype);
    Object.setPrototypeOf(this, proto);
    Object.defineProperty(this, "name", {
      configurable: true,
      enumerable: false,
      value: _DecodeError.name
    });
  }
};

// node_modules/@msgpack/msgpack/dist.esm/utils/int.mjs
var UINT32_MAX = 4294967295;
function setUint64(view, offset, value) {
  const high = value / 4294967296;
  const low = value;
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}
function setInt64(view, offset, value) {
  const high = Math.floor(value / 4294967296);
  const low = value;
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}
function getInt64(view, offset) {
  const high = view.getInt32(offset);
  const low = view.getUint32(offset + 4);
  return high * 4294967296 + low;
}
function getUint64(view, offset) {
  const high = view.getUint32(offset);
  const low = view.getUint32(offset + 4);
  return high * 4294967296 + low;
}

// node_modules/@msgpack/msgpack/dist.esm/timestamp.mjs
var EXT_TIMESTAMP = -1;
var TIMESTAMP32_MAX_SEC = 4294967296 - 1;
var TIMESTAMP64_MAX_SEC = 17179869184 - 1;
function encodeTimeSpecToTimestamp({ sec, nsec }) {
  if (sec >= 0 && nsec >= 0 && sec <= TIMESTAMP64_MAX_SEC) {
    if (nsec === 0 && sec <= TIMESTAMP32_MAX_SEC) {
      const rv = new Uint8Array(4);
      const view = new DataView(rv.buffer);
      view.setUint32(0, sec);
      return rv;
    } else {
      const secHigh = sec / 4294967296;
      const secLow = sec & 4294967295;
      const rv = new Uint8Array(8);
      const view = new DataView(rv.buffer);
      view.setUint32(0, nsec << 2 | secHigh & 3);
      view.setUint32(4, secLow);
      return rv;
    }
  } else {
    const rv = new Uint8Array(12);
    const view = new DataView(rv.buffer);
    view.setUint32(0, nsec);
    setInt64(view, 4, sec);
    return rv;
  }
}
function encodeDateToTimeSpec(date) {
  const msec = date.getTime();
  const sec = Math.floor(msec / 1e3);
  const nsec = (msec - sec * 1e3) * 1e6;
  const nsecInSec = Math.floor(nsec / 1e9);
  return {
    sec: sec + nsecInSec,
    nsec: nsec - nsecInSec * 1e9
  };
}
function encodeTimestampExtension(object) {
  if (object instanceof Date) {
    const timeSpec = encodeDateToTimeSpec(object);
    return encodeTimeSpecToTimestamp(timeSpec);
  } else {
    return null;
  }
}
function decodeTimestampToTimeSpec(data) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (data.byteLength) {
    case 4: {
      const sec = view.getUint32(0);
      const nsec = 0;
      return { sec, nsec };
    }
    case 8: {
      const nsec30AndSecHigh2 = view.getUint32(0);
      const secLow32 = view.getUint32(4);
      const sec = (nsec30AndSecHigh2 & 3) * 4294967296 + secLow32;
      const nsec = nsec30AndSecHigh2 >>> 2;
      return { sec, nsec };
    }
    case 12: {
      const sec = getInt64(view, 4);
      const nsec = view.getUint32(0);
      return { sec, nsec };
    }
    default:
      throw new DecodeError(`Unrecognized data size for timestamp (expected 4, 8, or 12): ${data.length}`);
  }
}
function decodeTimestampExtension(data) {
  const timeSpec = decodeTimestampToTimeSpec(data);
  return new Date(timeSpec.sec * 1e3 + timeSpec.nsec / 1e6);
}
var timestampExtension = {
  type: EXT_TIMESTAMP,
  encode: encodeTimestampExtension,
  decode: decodeTimestampExtension
};

// node_modules/@msgpack/msgpack/dist.esm/ExtensionCodec.mjs
var _ExtensionCodec = class _ExtensionCodec {
  constructor() {
    // ensures ExtensionCodecType<X> matches ExtensionCodec<X>
    // this will make type errors a lot more clear
    // eslint-disable-next-line @typescript-eslint/naming-convention
    __publicField(this, "__brand");
    // built-in extensions
    __publicField(this, "builtInEncoders", []);
    __publicField(this, "builtInDecoders", []);
    // custom extensions
    __publicField(this, "encoders", []);
    __publicField(this, "decoders", []);
    this.register(timestampExtension);
  }
  register({ type, encode: encode2, decode }) {
    if (type >= 0) {
      this.encoders[type] = encode2;
      this.decoders[type] = decode;
    } else {
      const index = -1 - type;
      this.builtInEncoders[index] = encode2;
      this.builtInDecoders[index] = decode;
    }
  }
  tryToEncode(object, context) {
    for (let i = 0; i < this.builtInEncoders.length; i++) {
      const encodeExt = this.builtInEncoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context);
        if (data != null) {
          const type = -1 - i;
          return new ExtData(type, data);
        }
      }
    }
    for (let i = 0; i < this.encoders.length; i++) {
      const encodeExt = this.encoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context);
        if (data != null) {
          const type = i;
          return new ExtData(type, data);
        }
      }
    }
    if (object instanceof ExtData) {
      return object;
    }
    return null;
  }
  decode(data, type, context) {
    const decodeExt = type < 0 ? this.builtInDecoders[-1 - type] : this.decoders[type];
    if (decodeExt) {
      return decodeExt(data, type, context);
    } else {
      return new ExtData(type, data);
    }
  }
};
__publicField(_ExtensionCodec, "defaultCodec", new _ExtensionCodec());
var ExtensionCodec = _ExtensionCodec;

// node_modules/@msgpack/msgpack/dist.esm/utils/typedArrays.mjs
function isArrayBufferLike(buffer) {
  return buffer instanceof ArrayBuffer || typeof SharedArrayBuffer !== "undefined" && buffer instanceof SharedArrayBuffer;
}
function ensureUint8Array(buffer) {
  if (buffer instanceof Uint8Array) {
    return buffer;
  } else if (ArrayBuffer.isView(buffer)) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } else if (isArrayBufferLike(buffer)) {
    return new Uint8Array(buffer);
  } else {
    return Uint8Array.from(buffer);
  }
}

// node_modules/@msgpack/msgpack/dist.esm/Encoder.mjs
var DEFAULT_MAX_DEPTH = 100;
var DEFAULT_INITIAL_BUFFER_SIZE = 2048;
var Encoder = class _Encoder {
  constructor(options) {
    __publicField(this, "extensionCodec");
    __publicField(this, "context");
    __publicField(this, "useBigInt64");
    __publicField(this, "maxDepth");
    __publicField(this, "initialBufferSize");
    __publicField(this, "sortKeys");
    __publicField(this, "forceFloat32");
    __publicField(this, "ignoreUndefined");
    __publicField(this, "forceIntegerToFloat");
    __publicField(this, "pos");
    __publicField(this, "view");
    __publicField(this, "bytes");
    __publicField(this, "entered", false);
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.initialBufferSize = options?.initialBufferSize ?? DEFAULT_INITIAL_BUFFER_SIZE;
    this.sortKeys = options?.sortKeys ?? false;
    this.forceFloat32 = options?.forceFloat32 ?? false;
    this.ignoreUndefined = options?.ignoreUndefined ?? false;
    this.forceIntegerToFloat = options?.forceIntegerToFloat ?? false;
    this.pos = 0;
    this.view = new DataView(new ArrayBuffer(this.initialBufferSize));
    this.bytes = new Uint8Array(this.view.buffer);
  }
  clone() {
    return new _Encoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      maxDepth: this.maxDepth,
      initialBufferSize: this.initialBufferSize,
      sortKeys: this.sortKeys,
      forceFloat32: this.forceFloat32,
      ignoreUndefined: this.ignoreUndefined,
      forceIntegerToFloat: this.forceIntegerToFloat
    });
  }
  reinitializeState() {
    this.pos = 0;
  }
  /**
   * This is almost equivalent to {@link Encoder#encode}, but it returns an reference of the encoder's internal buffer and thus much faster than {@link Encoder#encode}.
   *
   * @returns Encodes the object and returns a shared reference the encoder's internal buffer.
   */
  encodeSharedRef(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encodeSharedRef(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.subarray(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  /**
   * @returns Encodes the object and returns a copy of the encoder's internal buffer.
   */
  encode(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encode(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.slice(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  doEncode(object, depth) {
    if (depth > this.maxDepth) {
      throw new Error(`Too deep objects in depth ${depth}`);
    }
    if (object == null) {
      this.encodeNil();
    } else if (typeof object === "boolean") {
      this.encodeBoolean(object);
    } else if (typeof object === "number") {
      if (!this.forceIntegerToFloat) {
        this.encodeNumber(object);
      } else {
        this.encodeNumberAsFloat(object);
      }
    } else if (typeof object === "string") {
      this.encodeString(object);
    } else if (this.useBigInt64 && typeof object === "bigint") {
      this.encodeBigInt64(object);
    } else {
      this.encodeObject(object, depth);
    }
  }
  ensureBufferSizeToWrite(sizeToWrite) {
    const requiredSize = this.pos + sizeToWrite;
    if (this.view.byteLength < requiredSize) {
      this.resizeBuffer(requiredSize * 2);
    }
  }
  resizeBuffer(newSize) {
    const newBuffer = new ArrayBuffer(newSize);
    const newBytes = new Uint8Array(newBuffer);
    const newView = new DataView(newBuffer);
    newBytes.set(this.bytes);
    this.view = newView;
    this.bytes = newBytes;
  }
  encodeNil() {
    this.writeU8(192);
  }
  encodeBoolean(object) {
    if (object === false) {
      this.writeU8(194);
    } else {
      this.writeU8(195);
    }
  }
  encodeNumber(object) {
    if (!this.forceIntegerToFloat && Number.isSafeInteger(object)) {
      if (object >= 0) {
        if (object < 128) {
          this.writeU8(object);
        } else if (object < 256) {
          this.writeU8(204);
          this.writeU8(object);
        } else if (object < 65536) {
          this.writeU8(205);
          this.writeU16(object);
        } else if (object < 4294967296) {
          this.writeU8(206);
          this.writeU32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(207);
          this.writeU64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      } else {
        if (object >= -32) {
          this.writeU8(224 | object + 32);
        } else if (object >= -128) {
          this.writeU8(208);
          this.writeI8(object);
        } else if (object >= -32768) {
          this.writeU8(209);
          this.writeI16(object);
        } else if (object >= -2147483648) {
          this.writeU8(210);
          this.writeI32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(211);
          this.writeI64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      }
    } else {
      this.encodeNumberAsFloat(object);
    }
  }
  encodeNumberAsFloat(object) {
    if (this.forceFloat32) {
      this.writeU8(202);
      this.writeF32(object);
    } else {
      this.writeU8(203);
      this.writeF64(object);
    }
  }
  encodeBigInt64(object) {
    if (object >= BigInt(0)) {
      this.writeU8(207);
      this.writeBigUint64(object);
    } else {
      this.writeU8(211);
      this.writeBigInt64(object);
    }
  }
  writeStringHeader(byteLength) {
    if (byteLength < 32) {
      this.writeU8(160 + byteLength);
    } else if (byteLength < 256) {
      this.writeU8(217);
      this.writeU8(byteLength);
    } else if (byteLength < 65536) {
      this.writeU8(218);
      this.writeU16(byteLength);
    } else if (byteLength < 4294967296) {
      this.writeU8(219);
      this.writeU32(byteLength);
    } else {
      throw new Error(`Too long string: ${byteLength} bytes in UTF-8`);
    }
  }
  encodeString(object) {
    const maxHeaderSize = 1 + 4;
    const byteLength = utf8Count(object);
    this.ensureBufferSizeToWrite(maxHeaderSize + byteLength);
    this.writeStringHeader(byteLength);
    utf8Encode(object, this.bytes, this.pos);
    this.pos += byteLength;
  }
  encodeObject(object, depth) {
    const ext = this.extensionCodec.tryToEncode(object, this.context);
    if (ext != null) {
      this.encodeExtension(ext);
    } else if (Array.isArray(object)) {
      this.encodeArray(object, depth);
    } else if (ArrayBuffer.isView(object)) {
      this.encodeBinary(object);
    } else if (typeof object === "object") {
      this.encodeMap(object, depth);
    } else {
      throw new Error(`Unrecognized object: ${Object.prototype.toString.apply(object)}`);
    }
  }
  encodeBinary(object) {
    const size = object.byteLength;
    if (size < 256) {
      this.writeU8(196);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(197);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(198);
      this.writeU32(size);
    } else {
      throw new Error(`Too large binary: ${size}`);
    }
    const bytes = ensureUint8Array(object);
    this.writeU8a(bytes);
  }
  encodeArray(object, depth) {
    const size = object.length;
    if (size < 16) {
      this.writeU8(144 + size);
    } else if (size < 65536) {
      this.writeU8(220);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(221);
      this.writeU32(size);
    } else {
      throw new Error(`Too large array: ${size}`);
    }
    for (const item of object) {
      this.doEncode(item, depth + 1);
    }
  }
  countWithoutUndefined(object, keys) {
    let count = 0;
    for (const key of keys) {
      if (object[key] !== void 0) {
        count++;
      }
    }
    return count;
  }
  encodeMap(object, depth) {
    const keys = Object.keys(object);
    if (this.sortKeys) {
      keys.sort();
    }
    const size = this.ignoreUndefined ? this.countWithoutUndefined(object, keys) : keys.length;
    if (size < 16) {
      this.writeU8(128 + size);
    } else if (size < 65536) {
      this.writeU8(222);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(223);
      this.writeU32(size);
    } else {
      throw new Error(`Too large map object: ${size}`);
    }
    for (const key of keys) {
      const value = object[key];
      if (!(this.ignoreUndefined && value === void 0)) {
        this.encodeString(key);
        this.doEncode(value, depth + 1);
      }
    }
  }
  encodeExtension(ext) {
    if (typeof ext.data === "function") {
      const data = ext.data(this.pos + 6);
      const size2 = data.length;
      if (size2 >= 4294967296) {
        throw new Error(`Too large extension object: ${size2}`);
      }
      this.writeU8(201);
      this.writeU32(size2);
      this.writeI8(ext.type);
      this.writeU8a(data);
      return;
    }
    const size = ext.data.length;
    if (size === 1) {
      this.writeU8(212);
    } else if (size === 2) {
      this.writeU8(213);
    } else if (size === 4) {
      this.writeU8(214);
    } else if (size === 8) {
      this.writeU8(215);
    } else if (size === 16) {
      this.writeU8(216);
    } else if (size < 256) {
      this.writeU8(199);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(200);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(201);
      this.writeU32(size);
    } else {
      throw new Error(`Too large extension object: ${size}`);
    }
    this.writeI8(ext.type);
    this.writeU8a(ext.data);
  }
  writeU8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setUint8(this.pos, value);
    this.pos++;
  }
  writeU8a(values) {
    const size = values.length;
    this.ensureBufferSizeToWrite(size);
    this.bytes.set(values, this.pos);
    this.pos += size;
  }
  writeI8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setInt8(this.pos, value);
    this.pos++;
  }
  writeU16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setUint16(this.pos, value);
    this.pos += 2;
  }
  writeI16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setInt16(this.pos, value);
    this.pos += 2;
  }
  writeU32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setUint32(this.pos, value);
    this.pos += 4;
  }
  writeI32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setInt32(this.pos, value);
    this.pos += 4;
  }
  writeF32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setFloat32(this.pos, value);
    this.pos += 4;
  }
  writeF64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setFloat64(this.pos, value);
    this.pos += 8;
  }
  writeU64(value) {
    this.ensureBufferSizeToWrite(8);
    setUint64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeI64(value) {
    this.ensureBufferSizeToWrite(8);
    setInt64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeBigUint64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigUint64(this.pos, value);
    this.pos += 8;
  }
  writeBigInt64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigInt64(this.pos, value);
    this.pos += 8;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/encode.mjs
function encode(value, options) {
  const encoder = new Encoder(options);
  return encoder.encodeSharedRef(value);
}

// node_modules/@msgpack/msgpack/dist.esm/utils/prettyByte.mjs
function prettyByte(byte) {
  return `${byte < 0 ? "-" : ""}0x${Math.abs(byte).toString(16).padStart(2, "0")}`;
}

// node_modules/@msgpack/msgpack/dist.esm/CachedKeyDecoder.mjs
var DEFAULT_MAX_KEY_LENGTH = 16;
var DEFAULT_MAX_LENGTH_PER_KEY = 16;
var CachedKeyDecoder = class {
  constructor(maxKeyLength = DEFAULT_MAX_KEY_LENGTH, maxLengthPerKey = DEFAULT_MAX_LENGTH_PER_KEY) {
    __publicField(this, "hit", 0);
    __publicField(this, "miss", 0);
    __publicField(this, "caches");
    __publicField(this, "maxKeyLength");
    __publicField(this, "maxLengthPerKey");
    this.maxKeyLength = maxKeyLength;
    this.maxLengthPerKey = maxLengthPerKey;
    this.caches = [];
    for (let i = 0; i < this.maxKeyLength; i++) {
      this.caches.push([]);
    }
  }
  canBeCached(byteLength) {
    return byteLength > 0 && byteLength <= this.maxKeyLength;
  }
  find(bytes, inputOffset, byteLength) {
    const records = this.caches[byteLength - 1];
    FIND_CHUNK: for (const record of records) {
      const recordBytes = record.bytes;
      for (let j = 0; j < byteLength; j++) {
        if (recordBytes[j] !== bytes[inputOffset + j]) {
          continue FIND_CHUNK;
        }
      }
      return record.str;
    }
    return null;
  }
  store(bytes, value) {
    const records = this.caches[bytes.length - 1];
    const record = { bytes, str: value };
    if (records.length >= this.maxLengthPerKey) {
      records[Math.random() * records.length | 0] = record;
    } else {
      records.push(record);
    }
  }
  decode(bytes, inputOffset, byteLength) {
    const cachedValue = this.find(bytes, inputOffset, byteLength);
    if (cachedValue != null) {
      this.hit++;
      return cachedValue;
    }
    this.miss++;
    const str2 = utf8DecodeJs(bytes, inputOffset, byteLength);
    const slicedCopyOfBytes = Uint8Array.prototype.slice.call(bytes, inputOffset, inputOffset + byteLength);
    this.store(slicedCopyOfBytes, str2);
    return str2;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/Decoder.mjs
var STATE_ARRAY = "array";
var STATE_MAP_KEY = "map_key";
var STATE_MAP_VALUE = "map_value";
var mapKeyConverter = (key) => {
  if (typeof key === "string" || typeof key === "number") {
    return key;
  }
  throw new DecodeError("The type of key must be string or number but " + typeof key);
};
var StackPool = class {
  constructor() {
    __publicField(this, "stack", []);
    __publicField(this, "stackHeadPosition", -1);
  }
  get length() {
    return this.stackHeadPosition + 1;
  }
  top() {
    return this.stack[this.stackHeadPosition];
  }
  pushArrayState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_ARRAY;
    state.position = 0;
    state.size = size;
    state.array = new Array(size);
  }
  pushMapState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_MAP_KEY;
    state.readCount = 0;
    state.size = size;
    state.map = {};
  }
  getUninitializedStateFromPool() {
    this.stackHeadPosition++;
    if (this.stackHeadPosition === this.stack.length) {
      const partialState = {
        type: void 0,
        size: 0,
        array: void 0,
        position: 0,
        readCount: 0,
        map: void 0,
        key: null
      };
      this.stack.push(partialState);
    }
    return this.stack[this.stackHeadPosition];
  }
  release(state) {
    const topStackState = this.stack[this.stackHeadPosition];
    if (topStackState !== state) {
      throw new Error("Invalid stack state. Released state is not on top of the stack.");
    }
    if (state.type === STATE_ARRAY) {
      const partialState = state;
      partialState.size = 0;
      partialState.array = void 0;
      partialState.position = 0;
      partialState.type = void 0;
    }
    if (state.type === STATE_MAP_KEY || state.type === STATE_MAP_VALUE) {
      const partialState = state;
      partialState.size = 0;
      partialState.map = void 0;
      partialState.readCount = 0;
      partialState.type = void 0;
    }
    this.stackHeadPosition--;
  }
  reset() {
    this.stack.length = 0;
    this.stackHeadPosition = -1;
  }
};
var HEAD_BYTE_REQUIRED = -1;
var EMPTY_VIEW = new DataView(new ArrayBuffer(0));
var EMPTY_BYTES = new Uint8Array(EMPTY_VIEW.buffer);
try {
  EMPTY_VIEW.getInt8(0);
} catch (e) {
  if (!(e instanceof RangeError)) {
    throw new Error("This module is not supported in the current JavaScript engine because DataView does not throw RangeError on out-of-bounds access");
  }
}
var MORE_DATA = new RangeError("Insufficient data");
var sharedCachedKeyDecoder = new CachedKeyDecoder();
var Decoder = class _Decoder {
  constructor(options) {
    __publicField(this, "extensionCodec");
    __publicField(this, "context");
    __publicField(this, "useBigInt64");
    __publicField(this, "rawStrings");
    __publicField(this, "maxStrLength");
    __publicField(this, "maxBinLength");
    __publicField(this, "maxArrayLength");
    __publicField(this, "maxMapLength");
    __publicField(this, "maxExtLength");
    __publicField(this, "keyDecoder");
    __publicField(this, "mapKeyConverter");
    __publicField(this, "totalPos", 0);
    __publicField(this, "pos", 0);
    __publicField(this, "view", EMPTY_VIEW);
    __publicField(this, "bytes", EMPTY_BYTES);
    __publicField(this, "headByte", HEAD_BYTE_REQUIRED);
    __publicField(this, "stack", new StackPool());
    __publicField(this, "entered", false);
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.rawStrings = options?.rawStrings ?? false;
    this.maxStrLength = options?.maxStrLength ?? UINT32_MAX;
    this.maxBinLength = options?.maxBinLength ?? UINT32_MAX;
    this.maxArrayLength = options?.maxArrayLength ?? UINT32_MAX;
    this.maxMapLength = options?.maxMapLength ?? UINT32_MAX;
    this.maxExtLength = options?.maxExtLength ?? UINT32_MAX;
    this.keyDecoder = options?.keyDecoder !== void 0 ? options.keyDecoder : sharedCachedKeyDecoder;
    this.mapKeyConverter = options?.mapKeyConverter ?? mapKeyConverter;
  }
  clone() {
    return new _Decoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      rawStrings: this.rawStrings,
      maxStrLength: this.maxStrLength,
      maxBinLength: this.maxBinLength,
      maxArrayLength: this.maxArrayLength,
      maxMapLength: this.maxMapLength,
      maxExtLength: this.maxExtLength,
      keyDecoder: this.keyDecoder
    });
  }
  reinitializeState() {
    this.totalPos = 0;
    this.headByte = HEAD_BYTE_REQUIRED;
    this.stack.reset();
  }
  setBuffer(buffer) {
    const bytes = ensureUint8Array(buffer);
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  appendBuffer(buffer) {
    if (this.headByte === HEAD_BYTE_REQUIRED && !this.hasRemaining(1)) {
      this.setBuffer(buffer);
    } else {
      const remainingData = this.bytes.subarray(this.pos);
      const newData = ensureUint8Array(buffer);
      const newBuffer = new Uint8Array(remainingData.length + newData.length);
      newBuffer.set(remainingData);
      newBuffer.set(newData, remainingData.length);
      this.setBuffer(newBuffer);
    }
  }
  hasRemaining(size) {
    return this.view.byteLength - this.pos >= size;
  }
  createExtraByteError(posToShow) {
    const { view, pos } = this;
    return new RangeError(`Extra ${view.byteLength - pos} of ${view.byteLength} byte(s) found at buffer[${posToShow}]`);
  }
  /**
   * @throws {@link DecodeError}
   * @throws {@link RangeError}
   */
  decode(buffer) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decode(buffer);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      const object = this.doDecodeSync();
      if (this.hasRemaining(1)) {
        throw this.createExtraByteError(this.pos);
      }
      return object;
    } finally {
      this.entered = false;
    }
  }
  *decodeMulti(buffer) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMulti(buffer);
      return;
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      while (this.hasRemaining(1)) {
        yield this.doDecodeSync();
      }
    } finally {
      this.entered = false;
    }
  }
  async decodeAsync(stream) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decodeAsync(stream);
    }
    try {
      this.entered = true;
      let decoded = false;
      let object;
      for await (const buffer of stream) {
        if (decoded) {
          this.entered = false;
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        try {
          object = this.doDecodeSync();
          decoded = true;
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
      if (decoded) {
        if (this.hasRemaining(1)) {
          throw this.createExtraByteError(this.totalPos);
        }
        return object;
      }
      const { headByte, pos, totalPos } = this;
      throw new RangeError(`Insufficient data in parsing ${prettyByte(headByte)} at ${totalPos} (${pos} in the current buffer)`);
    } finally {
      this.entered = false;
    }
  }
  decodeArrayStream(stream) {
    return this.decodeMultiAsync(stream, true);
  }
  decodeStream(stream) {
    return this.decodeMultiAsync(stream, false);
  }
  async *decodeMultiAsync(stream, isArray) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMultiAsync(stream, isArray);
      return;
    }
    try {
      this.entered = true;
      let isArrayHeaderRequired = isArray;
      let arrayItemsLeft = -1;
      for await (const buffer of stream) {
        if (isArray && arrayItemsLeft === 0) {
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        if (isArrayHeaderRequired) {
          arrayItemsLeft = this.readArraySize();
          isArrayHeaderRequired = false;
          this.complete();
        }
        try {
          while (true) {
            yield this.doDecodeSync();
            if (--arrayItemsLeft === 0) {
              break;
            }
          }
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
    } finally {
      this.entered = false;
    }
  }
  doDecodeSync() {
    DECODE: while (true) {
      const headByte = this.readHeadByte();
      let object;
      if (headByte >= 224) {
        object = headByte - 256;
      } else if (headByte < 192) {
        if (headByte < 128) {
          object = headByte;
        } else if (headByte < 144) {
          const size = headByte - 128;
          if (size !== 0) {
            this.pushMapState(size);
            this.complete();
            continue DECODE;
          } else {
            object = {};
          }
        } else if (headByte < 160) {
          const size = headByte - 144;
          if (size !== 0) {
            this.pushArrayState(size);
            this.complete();
            continue DECODE;
          } else {
            object = [];
          }
        } else {
          const byteLength = headByte - 160;
          object = this.decodeString(byteLength, 0);
        }
      } else if (headByte === 192) {
        object = null;
      } else if (headByte === 194) {
        object = false;
      } else if (headByte === 195) {
        object = true;
      } else if (headByte === 202) {
        object = this.readF32();
      } else if (headByte === 203) {
        object = this.readF64();
      } else if (headByte === 204) {
        object = this.readU8();
      } else if (headByte === 205) {
        object = this.readU16();
      } else if (headByte === 206) {
        object = this.readU32();
      } else if (headByte === 207) {
        if (this.useBigInt64) {
          object = this.readU64AsBigInt();
        } else {
          object = this.readU64();
        }
      } else if (headByte === 208) {
        object = this.readI8();
      } else if (headByte === 209) {
        object = this.readI16();
      } else if (headByte === 210) {
        object = this.readI32();
      } else if (headByte === 211) {
        if (this.useBigInt64) {
          object = this.readI64AsBigInt();
        } else {
          object = this.readI64();
        }
      } else if (headByte === 217) {
        const byteLength = this.lookU8();
        object = this.decodeString(byteLength, 1);
      } else if (headByte === 218) {
        const byteLength = this.lookU16();
        object = this.decodeString(byteLength, 2);
      } else if (headByte === 219) {
        const byteLength = this.lookU32();
        object = this.decodeString(byteLength, 4);
      } else if (headByte === 220) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 221) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 222) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 223) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 196) {
        const size = this.lookU8();
        object = this.decodeBinary(size, 1);
      } else if (headByte === 197) {
        const size = this.lookU16();
        object = this.decodeBinary(size, 2);
      } else if (headByte === 198) {
        const size = this.lookU32();
        object = this.decodeBinary(size, 4);
      } else if (headByte === 212) {
        object = this.decodeExtension(1, 0);
      } else if (headByte === 213) {
        object = this.decodeExtension(2, 0);
      } else if (headByte === 214) {
        object = this.decodeExtension(4, 0);
      } else if (headByte === 215) {
        object = this.decodeExtension(8, 0);
      } else if (headByte === 216) {
        object = this.decodeExtension(16, 0);
      } else if (headByte === 199) {
        const size = this.lookU8();
        object = this.decodeExtension(size, 1);
      } else if (headByte === 200) {
        const size = this.lookU16();
        object = this.decodeExtension(size, 2);
      } else if (headByte === 201) {
        const size = this.lookU32();
        object = this.decodeExtension(size, 4);
      } else {
        throw new DecodeError(`Unrecognized type byte: ${prettyByte(headByte)}`);
      }
      this.complete();
      const stack = this.stack;
      while (stack.length > 0) {
        const state = stack.top();
        if (state.type === STATE_ARRAY) {
          state.array[state.position] = object;
          state.position++;
          if (state.position === state.size) {
            object = state.array;
            stack.release(state);
          } else {
            continue DECODE;
          }
        } else if (state.type === STATE_MAP_KEY) {
          if (object === "__proto__") {
            throw new DecodeError("The key __proto__ is not allowed");
          }
          state.key = this.mapKeyConverter(object);
          state.type = STATE_MAP_VALUE;
          continue DECODE;
        } else {
          state.map[state.key] = object;
          state.readCount++;
          if (state.readCount === state.size) {
            object = state.map;
            stack.release(state);
          } else {
            state.key = null;
            state.type = STATE_MAP_KEY;
            continue DECODE;
          }
        }
      }
      return object;
    }
  }
  readHeadByte() {
    if (this.headByte === HEAD_BYTE_REQUIRED) {
      this.headByte = this.readU8();
    }
    return this.headByte;
  }
  complete() {
    this.headByte = HEAD_BYTE_REQUIRED;
  }
  readArraySize() {
    const headByte = this.readHeadByte();
    switch (headByte) {
      case 220:
        return this.readU16();
      case 221:
        return this.readU32();
      default: {
        if (headByte < 160) {
          return headByte - 144;
        } else {
          throw new DecodeError(`Unrecognized array type byte: ${prettyByte(headByte)}`);
        }
      }
    }
  }
  pushMapState(size) {
    if (size > this.maxMapLength) {
      throw new DecodeError(`Max length exceeded: map length (${size}) > maxMapLengthLength (${this.maxMapLength})`);
    }
    this.stack.pushMapState(size);
  }
  pushArrayState(size) {
    if (size > this.maxArrayLength) {
      throw new DecodeError(`Max length exceeded: array length (${size}) > maxArrayLength (${this.maxArrayLength})`);
    }
    this.stack.pushArrayState(size);
  }
  decodeString(byteLength, headerOffset) {
    if (!this.rawStrings || this.stateIsMapKey()) {
      return this.decodeUtf8String(byteLength, headerOffset);
    }
    return this.decodeBinary(byteLength, headerOffset);
  }
  /**
   * @throws {@link RangeError}
   */
  decodeUtf8String(byteLength, headerOffset) {
    if (byteLength > this.maxStrLength) {
      throw new DecodeError(`Max length exceeded: UTF-8 byte length (${byteLength}) > maxStrLength (${this.maxStrLength})`);
    }
    if (this.bytes.byteLength < this.pos + headerOffset + byteLength) {
      throw MORE_DATA;
    }
    const offset = this.pos + headerOffset;
    let object;
    if (this.stateIsMapKey() && this.keyDecoder?.canBeCached(byteLength)) {
      object = this.keyDecoder.decode(this.bytes, offset, byteLength);
    } else {
      object = utf8Decode(this.bytes, offset, byteLength);
    }
    this.pos += headerOffset + byteLength;
    return object;
  }
  stateIsMapKey() {
    if (this.stack.length > 0) {
      const state = this.stack.top();
      return state.type === STATE_MAP_KEY;
    }
    return false;
  }
  /**
   * @throws {@link RangeError}
   */
  decodeBinary(byteLength, headOffset) {
    if (byteLength > this.maxBinLength) {
      throw new DecodeError(`Max length exceeded: bin length (${byteLength}) > maxBinLength (${this.maxBinLength})`);
    }
    if (!this.hasRemaining(byteLength + headOffset)) {
      throw MORE_DATA;
    }
    const offset = this.pos + headOffset;
    const object = this.bytes.subarray(offset, offset + byteLength);
    this.pos += headOffset + byteLength;
    return object;
  }
  decodeExtension(size, headOffset) {
    if (size > this.maxExtLength) {
      throw new DecodeError(`Max length exceeded: ext length (${size}) > maxExtLength (${this.maxExtLength})`);
    }
    const extType = this.view.getInt8(this.pos + headOffset);
    const data = this.decodeBinary(
      size,
      headOffset + 1
      /* extType */
    );
    return this.extensionCodec.decode(data, extType, this.context);
  }
  lookU8() {
    return this.view.getUint8(this.pos);
  }
  lookU16() {
    return this.view.getUint16(this.pos);
  }
  lookU32() {
    return this.view.getUint32(this.pos);
  }
  readU8() {
    const value = this.view.getUint8(this.pos);
    this.pos++;
    return value;
  }
  readI8() {
    const value = this.view.getInt8(this.pos);
    this.pos++;
    return value;
  }
  readU16() {
    const value = this.view.getUint16(this.pos);
    this.pos += 2;
    return value;
  }
  readI16() {
    const value = this.view.getInt16(this.pos);
    this.pos += 2;
    return value;
  }
  readU32() {
    const value = this.view.getUint32(this.pos);
    this.pos += 4;
    return value;
  }
  readI32() {
    const value = this.view.getInt32(this.pos);
    this.pos += 4;
    return value;
  }
  readU64() {
    const value = getUint64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readI64() {
    const value = getInt64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readU64AsBigInt() {
    const value = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return value;
  }
  readI64AsBigInt() {
    const value = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return value;
  }
  readF32() {
    const value = this.view.getFloat32(this.pos);
    this.pos += 4;
    return value;
  }
  readF64() {
    const value = this.view.getFloat64(this.pos);
    this.pos += 8;
    return value;
  }
};

// src/errors.js
var ProtocolError = class extends Error {
  /** @param {string} message @param {number} [code] */
  constructor(message, code = 1) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
};
var DeltaError = class extends ProtocolError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "DeltaError";
  }
};

// src/delta.js
var LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
var DTYPES = Object.freeze({
  u8: { ctor: Uint8Array, width: 1, min: 0, max: 255, int: true, get: "getUint8" },
  i8: { ctor: Int8Array, width: 1, min: -128, max: 127, int: true, get: "getInt8" },
  u16: { ctor: Uint16Array, width: 2, min: 0, max: 65535, int: true, get: "getUint16" },
  i16: { ctor: Int16Array, width: 2, min: -32768, max: 32767, int: true, get: "getInt16" },
  u32: { ctor: Uint32Array, width: 4, min: 0, max: 4294967295, int: true, get: "getUint32" },
  i32: { ctor: Int32Array, width: 4, min: -2147483648, max: 2147483647, int: true, get: "getInt32" },
  f32: { ctor: Float32Array, width: 4, min: -Infinity, max: Infinity, int: false, get: "getFloat32" },
  f64: { ctor: Float64Array, width: 8, min: -Infinity, max: Infinity, int: false, get: "getFloat64" }
});
var COL_CODES = Object.freeze({
  u8: { dt: DTYPES.u8, diff: false },
  u16: { dt: DTYPES.u16, diff: false },
  u32: { dt: DTYPES.u32, diff: false },
  i8: { dt: DTYPES.i8, diff: false },
  i16: { dt: DTYPES.i16, diff: false },
  i32: { dt: DTYPES.i32, diff: false },
  f32: { dt: DTYPES.f32, diff: false },
  f64: { dt: DTYPES.f64, diff: false },
  d8: { dt: DTYPES.i8, diff: true },
  d16: { dt: DTYPES.i16, diff: true },
  d32: { dt: DTYPES.i32, diff: true }
});
var IDLIST_CODES = Object.freeze({ u8: DTYPES.u8, u16: DTYPES.u16, u32: DTYPES.u32 });
var MAX_FIELDS = 32;
var hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
function isUint(v) {
  return Number.isInteger(v) && v >= 0;
}
function viewLE(bin, dt) {
  const n = bin.byteLength / dt.width;
  if (dt.width === 1) {
    return dt.ctor === Uint8Array ? bin : new Int8Array(bin.buffer, bin.byteOffset, n);
  }
  if (LITTLE_ENDIAN) {
    if (bin.byteOffset % dt.width === 0) return new dt.ctor(bin.buffer, bin.byteOffset, n);
    const copy = bin.slice();
    return new dt.ctor(copy.buffer, 0, n);
  }
  const out = new dt.ctor(n);
  const dv = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const get = dt.get;
  for (let i = 0; i < n; i++) out[i] = dv[get](i * dt.width, true);
  return out;
}
var WireField = class {
  /**
   * @param {string} name
   * @param {keyof typeof DTYPES} dtype
   * @param {number | null} quant
   * @param {string | null} kind
   */
  constructor(name, dtype, quant = null, kind = null) {
    this.name = name;
    this.dtype = dtype;
    this.quant = quant;
    this.kind = kind ?? (quant !== null || !DTYPES[dtype].int ? "float" : "int");
    this.dt = DTYPES[dtype];
  }
  /** True for a float field (f32/f64 or quantized): interpolated, dequantized by values(). */
  get isFloat() {
    return this.quant !== null || !this.dt.int;
  }
};
var WireSchema = class _WireSchema {
  /** @param {WireField[]} fields */
  constructor(fields) {
    if (fields.length > MAX_FIELDS) throw new DeltaError(`schema has ${fields.length} fields (max 32)`);
    this.fields = fields;
    this.index = new Map(fields.map((f, i) => [f.name, i]));
    if (this.index.size !== fields.length) throw new DeltaError("schema has duplicate field names");
  }
  /** Parse the msgpack form {"fields": [{"n", "t", "q"?, "k"?}, ...]}; throws DeltaError. */
  static fromWire(obj) {
    if (obj === null || typeof obj !== "object" || !Array.isArray(obj.fields)) {
      throw new DeltaError('schema must be a map with a "fields" array');
    }
    const fields = obj.fields.map((f, i) => {
      if (f === null || typeof f !== "object" || Array.isArray(f)) {
        throw new DeltaError(`schema field ${i} is not a map`);
      }
      if (typeof f.n !== "string" || f.n.length === 0 || f.n.length > 64) {
        throw new DeltaError(`schema field ${i}: "n" must be a short str`);
      }
      if (typeof f.t !== "string" || !hasOwn(DTYPES, f.t)) {
        throw new DeltaError(`schema field ${f.n}: unknown dtype ${JSON.stringify(f.t)}`);
      }
      let q = f.q ?? null;
      if (q instanceof Number) q = q.valueOf();
      if (q !== null && !(typeof q === "number" && q > 0 && Number.isFinite(q))) {
        throw new DeltaError(`schema field ${f.n}: "q" must be a float > 0`);
      }
      if (q !== null && !DTYPES[f.t].int) {
        throw new DeltaError(`schema field ${f.n}: a quantized field needs an integer dtype`);
      }
      if (f.k !== void 0 && f.k !== null && typeof f.k !== "string") {
        throw new DeltaError(`schema field ${f.n}: "k" must be a str`);
      }
      const k = typeof f.k === "string" ? f.k : null;
      return new WireField(f.n, f.t, q, k);
    });
    return new _WireSchema(fields);
  }
  get names() {
    return this.fields.map((f) => f.name);
  }
};
function decodeIdList(v, what = "IDLIST") {
  if (!Array.isArray(v) || v.length < 3) throw new DeltaError(`${what}: must be [first, code, gaps]`);
  const [first, code, gaps] = v;
  if (!isUint(first) || first > 4294967295) throw new DeltaError(`${what}: first must be a uint32`);
  if (typeof code !== "string" || !hasOwn(IDLIST_CODES, code)) {
    throw new DeltaError(`${what}: unknown code ${JSON.stringify(code)}`);
  }
  if (!(gaps instanceof Uint8Array)) throw new DeltaError(`${what}: gaps must be a bin`);
  const dt = IDLIST_CODES[code];
  if (gaps.byteLength % dt.width !== 0) {
    throw new DeltaError(`${what}: gaps length ${gaps.byteLength} is not a multiple of ${dt.width}`);
  }
  const g = viewLE(gaps, dt);
  const n = g.length + 1;
  const out = new Uint32Array(n);
  let acc = first;
  out[0] = acc;
  for (let i = 1; i < n; i++) {
    const d = g[i - 1];
    if (d < 1) throw new DeltaError(`${what}: gap ${i - 1} is 0 (values must be strictly ascending)`);
    acc += d;
    out[i] = acc;
  }
  if (acc > 4294967295) throw new DeltaError(`${what}: value ${acc} exceeds uint32`);
  return out;
}
function decodeCol(v, what) {
  if (!Array.isArray(v) || v.length < 2) throw new DeltaError(`${what}: COL must be [code, data]`);
  const [code, data] = v;
  if (typeof code !== "string" || !hasOwn(COL_CODES, code)) {
    throw new DeltaError(`${what}: unknown COL code ${JSON.stringify(code)}`);
  }
  if (!(data instanceof Uint8Array)) throw new DeltaError(`${what}: COL data must be a bin`);
  const cc = COL_CODES[code];
  if (data.byteLength % cc.dt.width !== 0) {
    throw new DeltaError(`${what}: COL length ${data.byteLength} is not a multiple of ${cc.dt.width}`);
  }
  return { code, diff: cc.diff, dt: cc.dt, values: viewLE(data, cc.dt) };
}
function decodeDelta(msg) {
  if (!Array.isArray(msg) || msg.length < 7 || msg[0] !== 17) {
    throw new DeltaError("DELTA must be [17, tick, base_tick, count, despawned, spawned, groups]");
  }
  const [, tick, baseTick, count, despawned, spawned, groups] = msg;
  if (!isUint(tick)) throw new DeltaError("DELTA: tick must be a uint");
  if (baseTick !== null && !isUint(baseTick)) throw new DeltaError("DELTA: base_tick must be a uint or nil");
  if (!isUint(count) || count > 4294967295) throw new DeltaError("DELTA: count must be a uint32");
  const des = despawned === null ? null : decodeIdList(despawned, "despawned");
  let sp = null;
  if (spawned !== null) {
    if (!Array.isArray(spawned) || spawned.length < 2 || !Array.isArray(spawned[1])) {
      throw new DeltaError("DELTA: spawned must be nil or [IDLIST, [COL, ...]]");
    }
    const ids = decodeIdList(spawned[0], "spawned ids");
    const cols = spawned[1].map((c, i) => {
      const col = decodeCol(c, `spawned COL ${i}`);
      if (col.diff) throw new DeltaError(`spawned COL ${i}: difference codes never appear in spawned`);
      if (col.values.length !== ids.length) {
        throw new DeltaError(`spawned COL ${i}: ${col.values.length} values for ${ids.length} ids`);
      }
      return col;
    });
    sp = { ids, cols };
  }
  if (!Array.isArray(groups)) throw new DeltaError("DELTA: groups must be an array");
  const gs = groups.map((g, gi) => {
    if (!Array.isArray(g) || g.length < 3 || !Array.isArray(g[2])) {
      throw new DeltaError(`group ${gi}: must be [mask, ROWLIST, [COL, ...]]`);
    }
    const mask = g[0];
    if (!isUint(mask) || mask === 0 || mask > 4294967295) {
      throw new DeltaError(`group ${gi}: mask must be a non-zero uint32`);
    }
    const rows = decodeIdList(g[1], `group ${gi} rows`);
    let bits = 0;
    for (let m = mask; m; m = Math.floor(m / 2)) bits += m & 1;
    if (g[2].length !== bits) {
      throw new DeltaError(`group ${gi}: ${g[2].length} COLs for ${bits} mask bits`);
    }
    const cols = g[2].map((c, ci) => {
      const col = decodeCol(c, `group ${gi} COL ${ci}`);
      if (col.values.length !== rows.length) {
        throw new DeltaError(`group ${gi} COL ${ci}: ${col.values.length} values for ${rows.length} rows`);
      }
      return col;
    });
    return { mask, rows, cols };
  });
  return { type: 17, tick, baseTick, count, despawned: des, spawned: sp, groups: gs };
}
function checkRange(values, colDt, fdt, what) {
  if (!fdt.int) return;
  if (colDt.min >= fdt.min && colDt.max <= fdt.max) return;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < fdt.min || v > fdt.max) {
      throw new DeltaError(`${what}: value ${v} out of range for ${fdtName(fdt)}`);
    }
  }
}
function fdtName(fdt) {
  for (const [k, v] of Object.entries(DTYPES)) if (v === fdt) return k;
  return "?";
}
function checkRawCode(col, field, what) {
  if (!field.dt.int) {
    if (col.dt !== field.dt || col.diff) {
      throw new DeltaError(`${what}: field ${field.name} (${field.dtype}) needs COL code ${field.dtype}, got ${col.code}`);
    }
    return;
  }
  if (!col.diff && !col.dt.int) {
    throw new DeltaError(`${what}: float COL ${col.code} for integer field ${field.name}`);
  }
}
var Replica = class {
  /** @param {WireSchema} schema */
  constructor(schema) {
    this.schema = schema;
    this.tick = null;
    this.count = 0;
    this._front = this._alloc(16);
    this._back = this._alloc(16);
    this._valuesCache = /* @__PURE__ */ new Map();
  }
  _alloc(cap) {
    return {
      ids: new Uint32Array(cap),
      cols: this.schema.fields.map((f) => new f.dt.ctor(cap))
    };
  }
  /** Sorted entity ids (a view, valid until the next apply). */
  get ids() {
    return this._front.ids.subarray(0, this.count);
  }
  /** Wire-value columns by field name (views, valid until the next apply). */
  get columns() {
    const out = {};
    const fields = this.schema.fields;
    for (let i = 0; i < fields.length; i++) out[fields[i].name] = this._front.cols[i].subarray(0, this.count);
    return out;
  }
  /** The wire-value column of one field (a view). */
  column(name) {
    const i = this.schema.index.get(name);
    if (i === void 0) throw new Error(`no field named ${name}`);
    return this._front.cols[i].subarray(0, this.count);
  }
  /** Real values of a field: wire * q (Float64Array) for a quantized field, else the column. */
  values(name) {
    const i = this.schema.index.get(name);
    if (i === void 0) throw new Error(`no field named ${name}`);
    const f = this.schema.fields[i];
    const col = this._front.cols[i].subarray(0, this.count);
    if (f.quant === null) return col;
    let out = this._valuesCache.get(name);
    if (out === void 0) {
      out = new Float64Array(this.count);
      const q = f.quant;
      for (let r = 0; r < out.length; r++) out[r] = col[r] * q;
      this._valuesCache.set(name, out);
    }
    return out;
  }
  /** Every field's real values (dequantized), by name. */
  allValues() {
    const out = {};
    for (const f of this.schema.fields) out[f.name] = this.values(f.name);
    return out;
  }
  /** Row of entity `id`, or -1 (binary search over the sorted ids). */
  rowOf(id) {
    const ids = this._front.ids;
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = lo + hi >>> 1;
      const v = ids[mid];
      if (v === id) return mid;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
  /**
   * Set the state directly (tests, tools): `ids` strictly ascending uint32, `columns` the wire
   * values by field name. Throws DeltaError if inconsistent (the replica is then unchanged).
   */
  load(tick, ids, columns) {
    const n = ids.length;
    for (let i = 1; i < n; i++) {
      if (!(ids[i] > ids[i - 1])) throw new DeltaError("load: ids must be strictly ascending");
    }
    let cap = Math.max(16, this._back.ids.length);
    while (cap < n) cap *= 2;
    const buf = this._alloc(cap);
    buf.ids.set(ids);
    this.schema.fields.forEach((f, i) => {
      const col = columns[f.name];
      if (!col || col.length !== n) throw new DeltaError(`load: column ${f.name} needs ${n} values`);
      checkRange(col, DTYPES.f64, f.dt, `load ${f.name}`);
      buf.cols[i].set(col);
    });
    this._front = buf;
    this._back = this._alloc(cap);
    this.count = n;
    this.tick = tick;
    this._valuesCache.clear();
  }
  /** Forget the state (a new WELCOME): the next delta must be a full snapshot. */
  reset() {
    this.tick = null;
    this.count = 0;
    this._valuesCache.clear();
  }
  /**
   * Apply a decoded DELTA atomically. Throws DeltaError (and leaves the replica unchanged)
   * if it is malformed or does not apply (wrong base tick, unknown despawned id, ...).
   * @param {Delta} d
   */
  apply(d) {
    const fields = this.schema.fields;
    const nf = fields.length;
    const full = d.baseTick === null;
    if (!full && d.baseTick !== this.tick) {
      throw new DeltaError(
        this.tick === null ? `delta on base tick ${d.baseTick} but no full snapshot yet` : `delta on base tick ${d.baseTick} but the replica is at tick ${this.tick}`
      );
    }
    const oldN = full ? 0 : this.count;
    const oldIds = this._front.ids;
    const oldCols = this._front.cols;
    const des = d.despawned;
    let removed = null;
    if (des !== null) {
      removed = new Int32Array(des.length);
      let r = 0;
      for (let k = 0; k < des.length; k++) {
        const id = des[k];
        while (r < oldN && oldIds[r] < id) r++;
        if (r >= oldN || oldIds[r] !== id) throw new DeltaError(`despawned id ${id} is not in the state`);
        removed[k] = r++;
      }
    }
    const sp = d.spawned;
    const nSpawn = sp === null ? 0 : sp.ids.length;
    if (sp !== null) {
      if (sp.cols.length !== nf) throw new DeltaError(`spawned has ${sp.cols.length} COLs for ${nf} fields`);
      for (let f = 0; f < nf; f++) {
        checkRawCode(sp.cols[f], fields[f], "spawned");
        checkRange(sp.cols[f].values, sp.cols[f].dt, fields[f].dt, `spawned ${fields[f].name}`);
      }
    }
    const nRemoved = removed === null ? 0 : removed.length;
    const newN = oldN - nRemoved + nSpawn;
    if (newN !== d.count) throw new DeltaError(`count is ${d.count} but the state would hold ${newN}`);
    if (this._back.ids.length < newN) {
      let cap = Math.max(16, this._back.ids.length);
      while (cap < newN) cap *= 2;
      this._back = this._alloc(cap);
    }
    const back = this._back;
    let dst = 0;
    const copyOld = (from, to) => {
      if (to <= from) return;
      back.ids.set(oldIds.subarray(from, to), dst);
      for (let f = 0; f < nf; f++) back.cols[f].set(oldCols[f].subarray(from, to), dst);
      dst += to - from;
    };
    const copySpawn = (from, to) => {
      if (to <= from) return;
      back.ids.set(sp.ids.subarray(from, to), dst);
      for (let f = 0; f < nf; f++) back.cols[f].set(sp.cols[f].values.subarray(from, to), dst);
      dst += to - from;
    };
    const spIds = sp === null ? null : sp.ids;
    let oldRow = 0;
    let ri = 0;
    let si = 0;
    for (; ; ) {
      while (ri < nRemoved && removed[ri] === oldRow) {
        ri++;
        oldRow++;
      }
      if (oldRow >= oldN) {
        copySpawn(si, nSpawn);
        break;
      }
      const runEnd = ri < nRemoved ? removed[ri] : oldN;
      if (si >= nSpawn) {
        copyOld(oldRow, runEnd);
        oldRow = runEnd;
        continue;
      }
      const sid = spIds[si];
      let lo = oldRow;
      let hi = runEnd;
      while (lo < hi) {
        const mid = lo + hi >>> 1;
        if (oldIds[mid] < sid) lo = mid + 1;
        else hi = mid;
      }
      copyOld(oldRow, lo);
      oldRow = lo;
      if (lo < runEnd) {
        const limit = oldIds[lo];
        if (limit === sid) throw new DeltaError(`spawned id ${sid} is already in the state`);
        let sj = si + 1;
        while (sj < nSpawn && spIds[sj] < limit) sj++;
        if (sj < nSpawn && spIds[sj] === limit) {
          throw new DeltaError(`spawned id ${limit} is already in the state`);
        }
        copySpawn(si, sj);
        si = sj;
      }
    }
    for (let gi = 0; gi < d.groups.length; gi++) {
      const g = d.groups[gi];
      const rows = g.rows;
      if (rows.length && rows[rows.length - 1] >= newN) {
        throw new DeltaError(`group ${gi}: row ${rows[rows.length - 1]} >= count ${newN}`);
      }
      let ci = 0;
      for (let f = 0; f < MAX_FIELDS; f++) {
        if ((g.mask & 1 << f) === 0) continue;
        if (f >= nf) throw new DeltaError(`group ${gi}: mask bit ${f} but only ${nf} fields`);
        const col = g.cols[ci++];
        const field = fields[f];
        const out = back.cols[f];
        const vals = col.values;
        const what = `group ${gi} field ${field.name}`;
        if (col.diff) {
          if (!field.dt.int) throw new DeltaError(`${what}: difference code ${col.code} on a float field`);
          const lo = field.dt.min;
          const hi = field.dt.max;
          for (let i = 0; i < rows.length; i++) {
            const r = rows[i];
            const v = out[r] + vals[i];
            if (v < lo || v > hi) throw new DeltaError(`${what}: ${out[r]} + ${vals[i]} out of range for ${field.dtype}`);
            out[r] = v;
          }
        } else {
          checkRawCode(col, field, what);
          checkRange(vals, col.dt, field.dt, what);
          for (let i = 0; i < rows.length; i++) out[rows[i]] = vals[i];
        }
      }
    }
    this._back = this._front;
    this._front = back;
    this.count = newN;
    this.tick = d.tick;
    this._valuesCache.clear();
  }
};

// src/messages.js
var MsgType = Object.freeze({
  HELLO: 1,
  RESUME: 2,
  INPUT: 3,
  PING: 4,
  LEAVE: 5,
  CAMERA: 6,
  WELCOME: 16,
  DELTA: 17,
  INPUT_ACK: 18,
  EVENT: 19,
  ERROR: 20,
  PONG: 21,
  VIEW: 22
});
var CloseCode = Object.freeze({
  NORMAL: 1e3,
  GOING_AWAY: 1001,
  PROTOCOL_MISUSE: 4e3,
  UNAUTHORIZED: 4001,
  ROOM_FULL: 4002,
  UNKNOWN_ROOM: 4003,
  VERSION_MISMATCH: 4004,
  RESUME_INVALID: 4005,
  JOIN_REJECTED: 4006,
  INPUT_FLOOD: 4008,
  TOO_SLOW: 4009,
  ROOM_CRASHED: 4010,
  SESSION_REPLACED: 4011,
  HELLO_TIMEOUT: 4012,
  SPECTATORS_FULL: 4025,
  REDIRECT: 4013,
  MOVED: 4014,
  WORKER_RESTARTED: 4015
});
var ErrorCode = Object.freeze({
  MALFORMED: 1,
  UNKNOWN_TYPE: 2,
  INVALID_INPUT: 3,
  RATE_LIMITED: 4,
  TOO_LARGE: 5,
  JOIN_STATE: 6,
  SPECTATOR_INPUT: 7,
  NOT_SPECTATING: 8
});
var CLOSE_REASONS = Object.freeze({
  1e3: "connection closed",
  1001: "server shutting down",
  1002: "protocol error",
  1006: "connection lost",
  1009: "message too big",
  1011: "server error",
  4e3: "too many bad messages",
  4001: "unauthorized",
  4002: "room is full",
  4003: "unknown room or game",
  4004: "protocol version mismatch",
  4005: "resume token invalid or expired",
  4006: "join rejected by the game",
  4008: "input flood",
  4009: "connection too slow to keep up",
  4010: "the room's game crashed",
  4011: "session taken over by another connection",
  4012: "no HELLO in time",
  4013: "redirected to another node",
  4014: "room moved to another node",
  4015: "server worker restarted"
});
var PROTOCOL_VERSION = 1;
var SUBPROTOCOL = "gameserver.v1";
function encodeMessage(type, body) {
  return encode([type, body ?? {}]);
}
function encodeHello(opts = {}) {
  const body = { v: PROTOCOL_VERSION };
  for (const k of ["game", "room", "token", "name", "reservation"]) {
    if (opts[k] !== void 0 && opts[k] !== null) body[k] = String(opts[k]);
  }
  if (Array.isArray(opts.ext) && opts.ext.length) body.ext = opts.ext.map(String);
  if (opts.spectate) body.spectate = true;
  if (Number.isInteger(opts.follow) && opts.follow > 0) body.follow = opts.follow;
  return encodeMessage(MsgType.HELLO, body);
}
function encodeCamera(x, y, w = null, h = null, follow = null) {
  const body = { x: Number(x), y: Number(y) };
  if (w !== null && w !== void 0) body.w = Number(w);
  if (h !== null && h !== void 0) body.h = Number(h);
  if (Number.isInteger(follow) && follow > 0) body.follow = follow;
  return encodeMessage(MsgType.CAMERA, body);
}
function encodeResume(token) {
  return encodeMessage(MsgType.RESUME, { v: PROTOCOL_VERSION, token });
}
function encodeInput(seq, data, rt) {
  if (rt === null || rt === void 0) return encodeMessage(MsgType.INPUT, { s: seq >>> 0, d: data });
  return encodeMessage(MsgType.INPUT, { s: seq >>> 0, d: data, rt: Math.max(0, Math.floor(rt)) });
}
function encodePing(t) {
  return encodeMessage(MsgType.PING, { t });
}
function encodeLeave() {
  return encodeMessage(MsgType.LEAVE, {});
}
var rejectExt = {
  tryToEncode: () => null,
  decode: (_data, type) => {
    throw new ProtocolError(`msgpack ext type ${type} is not used by the protocol`);
  }
};
function strKeysOnly(key) {
  if (typeof key !== "string") throw new ProtocolError(`non-str map key ${JSON.stringify(key)}`);
  return key;
}
var LIMITS = Object.freeze({
  str: 256,
  token: 2048,
  errorMessage: 4096,
  inputKeys: 64,
  inputArray: 256,
  eventDepth: 32,
  inputsDepth: 3
});
var U32 = 4294967295;
var U63 = Number.MAX_SAFE_INTEGER;
var StrictDecoder = class extends Decoder {
  constructor() {
    super({ extensionCodec: rejectExt, mapKeyConverter: strKeysOnly });
    this.boxed = false;
  }
  readF32() {
    const v = super.readF32();
    if (!Number.isInteger(v)) return v;
    this.boxed = true;
    return new Number(v);
  }
  readF64() {
    const v = super.readF64();
    if (!Number.isInteger(v)) return v;
    this.boxed = true;
    return new Number(v);
  }
  /** SPEC 8: a str must be valid UTF-8 (TextDecoder would silently put U+FFFD in). */
  decodeUtf8String(byteLength, headerOffset) {
    const start = this.pos + headerOffset;
    const end = start + byteLength;
    const bytes = this.bytes;
    if (end <= bytes.byteLength) {
      let i = start;
      while (i < end && bytes[i] < 128) i++;
      if (i < end) {
        try {
          fatalUtf8.decode(bytes.subarray(i, end));
        } catch {
          throw new ProtocolError("invalid UTF-8 in a msgpack str", ErrorCode.MALFORMED);
        }
      }
    }
    return super.decodeUtf8String(byteLength, headerOffset);
  }
};
var fatalUtf8 = new TextDecoder("utf-8", { fatal: true });
var decoder = new StrictDecoder();
function unpackBoxed(bytes) {
  decoder.boxed = false;
  try {
    return [decoder.decode(bytes), decoder.boxed];
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`not a valid msgpack value (${e instanceof Error ? e.message : e})`);
  }
}
function unboxDeep(value) {
  if (value instanceof Number) return value.valueOf();
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return value;
  const stack = [value];
  while (stack.length) {
    const c = stack.pop();
    const keys = Array.isArray(c) ? c.keys() : Object.keys(c);
    for (const k of keys) {
      const v = c[k];
      if (v instanceof Number) c[k] = v.valueOf();
      else if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) stack.push(v);
    }
  }
  return value;
}
function unpack(bytes) {
  const [value, boxed] = unpackBoxed(bytes);
  return boxed ? unboxDeep(value) : value;
}
function isMap(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Number);
}
function asNumber(v) {
  if (typeof v === "number") return v;
  if (v instanceof Number) return v.valueOf();
  return void 0;
}
var bad = (message) => new ProtocolError(message, ErrorCode.MALFORMED);
function strLen(v, limit) {
  if (v.length <= limit) return v.length;
  let n = 0;
  for (const _ of v) n++;
  return n;
}
function short(v) {
  if (v === void 0) return "None";
  if (v instanceof Number) return `${v.valueOf()}.0 (a float)`;
  const r = isMap(v) ? "map" : Array.isArray(v) ? "array" : v instanceof Uint8Array ? "bin" : JSON.stringify(v);
  return r.length <= 40 ? r : `${r.slice(0, 37)}...`;
}
function uint(body, key, limit, what) {
  const v = body[key];
  if (!Number.isInteger(v) || v < 0 || v > limit) {
    throw bad(`${what}: "${key}" must be a uint <= ${limit}, got ${short(v)}`);
  }
  return v;
}
function num(body, key, what) {
  const v = asNumber(body[key]);
  if (v === void 0) throw bad(`${what}: "${key}" must be a number, got ${short(body[key])}`);
  return v;
}
function str(body, key, limit, what) {
  const v = body[key];
  if (typeof v !== "string" || strLen(v, limit) > limit) {
    throw bad(`${what}: "${key}" must be a str of at most ${limit} chars, got ${short(v)}`);
  }
  return v;
}
function optStr(body, key, limit, what) {
  const v = body[key];
  if (v === void 0 || v === null) return null;
  return str(body, key, limit, what);
}
function scalar(v) {
  if (v === null || typeof v === "boolean" || typeof v === "number" || v instanceof Number) return true;
  return typeof v === "string" && strLen(v, LIMITS.str) <= LIMITS.str;
}
function inputData(d) {
  if (!isMap(d)) throw bad('INPUT: "d" must be a map');
  const keys = Object.keys(d);
  if (keys.length > LIMITS.inputKeys) throw bad(`INPUT: more than ${LIMITS.inputKeys} keys`);
  for (const k of keys) {
    if (strLen(k, LIMITS.str) > LIMITS.str) throw bad("INPUT: keys must be short str");
    const v = d[k];
    if (scalar(v)) continue;
    if (Array.isArray(v) && v.length <= LIMITS.inputArray && v.every(scalar)) continue;
    throw bad(`INPUT: value of "${k}" must be a scalar or a flat array of scalars`);
  }
  return d;
}
function checkDepth(value, limit, what) {
  const stack = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop();
    if (Array.isArray(v) || isMap(v)) {
      if (depth >= limit) throw bad(`${what}: nested deeper than ${limit}`);
      for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, depth + 1]);
    }
  }
}
function inputsSchema(v) {
  if (!Array.isArray(v) || !v.every((x) => isMap(x) && typeof x.n === "string" && typeof x.t === "string")) {
    throw bad('WELCOME: "inputs" must be an array of {"n": str, "t": str, ...} maps');
  }
  checkDepth(v, LIMITS.inputsDepth, "WELCOME inputs");
  return v;
}
function control(type, body) {
  switch (type) {
    case MsgType.HELLO: {
      const w = "HELLO";
      return {
        type,
        v: uint(body, "v", U32, w),
        game: optStr(body, "game", LIMITS.str, w),
        room: optStr(body, "room", LIMITS.str, w),
        token: optStr(body, "token", LIMITS.token, w),
        name: optStr(body, "name", LIMITS.str, w),
        reservation: optStr(body, "reservation", LIMITS.str, w)
      };
    }
    case MsgType.RESUME:
      return { type, token: str(body, "token", LIMITS.token, "RESUME"), v: uint(body, "v", U32, "RESUME") };
    case MsgType.INPUT: {
      const s = uint(body, "s", U32, "INPUT");
      if (s === 0) throw bad('INPUT: "s" starts at 1');
      const rt = body.rt === void 0 || body.rt === null ? null : uint(body, "rt", U63, "INPUT");
      return { type, s, d: unboxDeep(inputData(body.d)), rt };
    }
    case MsgType.PING:
      return { type, t: num(body, "t", "PING") };
    case MsgType.LEAVE:
      return { type };
    case MsgType.CAMERA: {
      const out = { type, x: num(body, "x", "CAMERA"), y: num(body, "y", "CAMERA") };
      for (const k of ["w", "h"]) if (body[k] !== void 0 && body[k] !== null) out[k] = num(body, k, "CAMERA");
      if (body.follow !== void 0 && body.follow !== null) out.follow = uint(body, "follow", U32, "CAMERA");
      return out;
    }
    case MsgType.WELCOME: {
      const w = "WELCOME";
      const entity = body.entity === void 0 || body.entity === null ? null : uint(body, "entity", U32, w);
      const rates = ["tick_rate", "send_rate", "resume_grace"].map((k) => num(body, k, w));
      if (!rates.every((r) => Number.isFinite(r) && r >= 0)) {
        throw bad("WELCOME: rates and resume_grace must be finite and >= 0");
      }
      const out = {
        type,
        player: uint(body, "player", U32, w),
        room: str(body, "room", LIMITS.str, w),
        game: str(body, "game", LIMITS.str, w),
        tick: uint(body, "tick", U63, w),
        tick_rate: rates[0],
        send_rate: rates[1],
        schema: WireSchema.fromWire(body.schema),
        inputs: unboxDeep(inputsSchema(body.inputs)),
        resume: str(body, "resume", LIMITS.token, w),
        resume_grace: rates[2],
        entity,
        v: uint(body, "v", U32, w),
        ext: Array.isArray(body.ext) ? body.ext.filter((x) => typeof x === "string") : [],
        spectator: body.spectator === true,
        view: isMap(body.view) ? unboxDeep(body.view) : null,
        raw: unboxDeep(body)
      };
      if (!(out.tick_rate > 0)) throw bad("WELCOME: tick_rate must be > 0");
      return out;
    }
    case MsgType.INPUT_ACK:
      return { type, s: uint(body, "s", U32, "INPUT_ACK"), t: uint(body, "t", U63, "INPUT_ACK") };
    case MsgType.EVENT: {
      const d = body.d === void 0 ? null : body.d;
      checkDepth(d, LIMITS.eventDepth, 'EVENT "d"');
      return { type, k: str(body, "k", LIMITS.str, "EVENT"), d: unboxDeep(d) };
    }
    case MsgType.ERROR: {
      const err = { type, c: uint(body, "c", U32, "ERROR"), m: str(body, "m", LIMITS.errorMessage, "ERROR") };
      const url = optStr(body, "url", LIMITS.token, "ERROR");
      if (url !== null) err.url = url;
      return err;
    }
    case MsgType.PONG:
      return { type, t: num(body, "t", "PONG"), st: uint(body, "st", U63, "PONG") };
    default:
      throw new ProtocolError(`unknown message type ${type}`, ErrorCode.UNKNOWN_TYPE);
  }
}
var CLIENT_TYPES = /* @__PURE__ */ new Set([1, 2, 3, 4, 5, 6]);
var SERVER_TYPES = /* @__PURE__ */ new Set([16, 17, 18, 19, 20, 21, 22]);
function decodeMessage(bytes, direction = "any") {
  const [obj] = unpackBoxed(bytes);
  if (!Array.isArray(obj) || obj.length === 0) throw bad("a game message must be a non-empty msgpack array");
  const type = obj[0];
  if (!Number.isInteger(type)) throw bad("message type must be an integer");
  if (!CLIENT_TYPES.has(type) && !SERVER_TYPES.has(type)) {
    throw new ProtocolError(`unknown message type ${type}`, ErrorCode.UNKNOWN_TYPE);
  }
  const allowed = direction === "server" ? SERVER_TYPES : direction === "client" ? CLIENT_TYPES : null;
  if (allowed !== null && !allowed.has(type)) {
    throw new ProtocolError(`message type ${type} is not sent in this direction`, ErrorCode.UNKNOWN_TYPE);
  }
  if (type === MsgType.DELTA) return decodeDelta(obj);
  if (type === MsgType.VIEW) {
    if (obj.length < 4 || !Number.isInteger(obj[1]) || obj[1] < 0) throw bad("VIEW must be [22, tick, base_tick, left, PIECE...]");
    return { type, tick: obj[1], raw: obj };
  }
  if (obj.length < 2 || !isMap(obj[1])) throw bad(`message type ${type}: body must be a msgpack map`);
  return control(type, obj[1]);
}

// src/view.js
var EMPTY = new Uint32Array(0);
var ViewReplica = class {
  /** @param {import("./delta.js").WireSchema} schema */
  constructor(schema) {
    this.schema = schema;
    this.tick = null;
    this.channels = /* @__PURE__ */ new Map();
    this._rows = /* @__PURE__ */ new Map();
    this._union = new Replica(schema);
    this.entered = EMPTY;
    this.leftView = EMPTY;
    this.despawned = EMPTY;
  }
  get count() {
    return this._union.count;
  }
  get ids() {
    return this._union.ids;
  }
  get columns() {
    return this._union.columns;
  }
  column(name) {
    return this._union.column(name);
  }
  values(name) {
    return this._union.values(name);
  }
  allValues() {
    return this._union.allValues();
  }
  rowOf(id) {
    return this._union.rowOf(id);
  }
  reset() {
    this.tick = null;
    this.channels = /* @__PURE__ */ new Map();
    this._rows = /* @__PURE__ */ new Map();
    this._union.reset();
  }
  /**
   * Apply one VIEW (the msgpack array, already decoded); returns true for a reset.
   * @param {any[]} raw
   */
  apply(raw) {
    if (!Array.isArray(raw) || raw.length < 4 || raw[0] !== 22) {
      throw new DeltaError("VIEW must be [22, tick, base_tick, left, PIECE...]");
    }
    const [, tick, base, left] = raw;
    if (!Number.isInteger(tick) || tick < 0) throw new DeltaError("VIEW tick must be a uint");
    const reset = base === null;
    if (!reset && (this.tick === null || base !== this.tick)) {
      throw new DeltaError(`VIEW base_tick ${base} does not match the view's tick ${this.tick}`);
    }
    const leftChannels = left === null ? EMPTY : decodeIdList(left, "VIEW left");
    const chans = reset ? /* @__PURE__ */ new Map() : new Map(this.channels);
    const rows = reset ? /* @__PURE__ */ new Map() : new Map(this._rows);
    for (const c of leftChannels) {
      chans.delete(c);
      rows.delete(c);
    }
    const scratch = /* @__PURE__ */ new Set();
    const gone = /* @__PURE__ */ new Set();
    for (let i = 4; i < raw.length; i++) {
      const p = raw[i];
      if (!Array.isArray(p) || p.length < 2) throw new DeltaError(`VIEW piece ${i - 4}: must be [channel, DELTA, gone] or MOVES`);
      const c = p[0];
      if (!Number.isInteger(c) || c < 0 || c > 4294967295) throw new DeltaError(`VIEW piece ${i - 4}: channel must be a uint32`);
      let delta;
      let g = null;
      const second = p[1];
      if (Number.isInteger(second) || second instanceof Uint8Array) {
        const held = reset ? void 0 : chans.get(c);
        if (held === void 0) throw new DeltaError(`VIEW piece ${i - 4}: MOVES for channel ${c}, which the view does not hold`);
        if (Number.isInteger(second) && p.length !== 3) {
          delta = movesDelta(p, tick, base, held.count, i - 4);
          rows.set(c, [tick, p[2], p[3], second]);
        } else {
          const rec = rows.get(c);
          if (rec === void 0 || rec[0] !== base) {
            throw new DeltaError(`VIEW piece ${i - 4}: SAME for channel ${c}, whose last MOVES rows are not those of tick ${base}`);
          }
          const mask = Number.isInteger(second) ? second : rec[3];
          const vals = Number.isInteger(second) ? p[2] : second;
          delta = movesDelta([c, mask, rec[1], rec[2], vals], tick, base, held.count, i - 4);
          rows.set(c, [tick, rec[1], rec[2], mask]);
        }
      } else {
        if (p.length < 3) throw new DeltaError(`VIEW piece ${i - 4}: must be [channel, DELTA, gone]`);
        delta = second;
        g = p[2] === null ? null : decodeIdList(p[2], `VIEW piece ${i - 4} gone`);
        rows.delete(c);
      }
      const d = decodeDelta(delta);
      if (d.tick !== tick) throw new DeltaError(`VIEW piece ${i - 4}: DELTA tick is not the VIEW's tick`);
      let rep = chans.get(c);
      if (d.baseTick === null || rep === void 0) {
        rep = new Replica(this.schema);
        if (d.baseTick !== null) rep.load(d.baseTick, [], emptyColumns(this.schema));
        scratch.add(c);
      } else if (!scratch.has(c)) {
        rep = cloneReplica(rep);
        scratch.add(c);
      }
      rep.apply(d);
      chans.set(c, rep);
      if (g !== null) for (const id of g) gone.add(id);
    }
    const before = this._union.ids.slice();
    for (const rep of chans.values()) rep.tick = tick;
    this.channels = chans;
    this._rows = rows;
    this.tick = tick;
    this._rebuild(before, gone);
    return reset;
  }
  _rebuild(before, gone) {
    const reps = [...this.channels.values()].filter((r) => r.count > 0);
    const fields = this.schema.fields;
    let total = 0;
    for (const r of reps) total += r.count;
    const order = new Array(total);
    let k = 0;
    reps.forEach((r, ri) => {
      const ids2 = r.ids;
      for (let row = 0; row < ids2.length; row++) order[k++] = [ids2[row], ri, row];
    });
    order.sort((a, b) => a[0] - b[0]);
    const ids = [];
    const cols = fields.map(() => []);
    const rcols = reps.map((r) => fields.map((f) => r.column(f.name)));
    let last = -1;
    for (const [id, ri, row] of order) {
      if (id === last) continue;
      last = id;
      ids.push(id);
      for (let f = 0; f < fields.length; f++) cols[f].push(rcols[ri][f][row]);
    }
    const byName = {};
    fields.forEach((f, i) => byName[f.name] = cols[i]);
    this._union.load(this.tick, ids, byName);
    const now = this._union.ids;
    this.entered = difference(now, before);
    const out = difference(before, now);
    const dead = [];
    const away = [];
    for (const id of out) (gone.has(id) ? dead : away).push(id);
    this.despawned = Uint32Array.from(dead);
    this.leftView = Uint32Array.from(away);
  }
};
var CODE_IDS = Object.freeze(["u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64", "d8", "d16", "d32"]);
var CODE_WIDTH = Object.freeze({ u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, f64: 8, d8: 1, d16: 2, d32: 4 });
function movesDelta(p, tick, base, count, i) {
  const [, mask, first, gaps, values] = p;
  if (p.length < 5 || !Number.isInteger(mask) || mask <= 0 || mask > 4294967295 || !Number.isInteger(first) || !(gaps instanceof Uint8Array) || !(values instanceof Uint8Array)) {
    throw new DeltaError(`VIEW piece ${i}: MOVES must be [channel, mask, first, gaps, values]`);
  }
  let k = 0;
  for (let m = mask; m; m = Math.floor(m / 2)) k += m & 1;
  const n = gaps.length + 1;
  let pos = k + 1 >> 1;
  const cols = [];
  for (let j = 0; j < k; j++) {
    const byte = j >> 1 < values.length ? values[j >> 1] : 255;
    const id = byte >> 4 * (j & 1) & 15;
    if (id >= CODE_IDS.length) throw new DeltaError(`VIEW piece ${i}: MOVES column ${j} has no valid code id`);
    const code = CODE_IDS[id];
    const w = CODE_WIDTH[code] * n;
    if (pos + w > values.length) throw new DeltaError(`VIEW piece ${i}: MOVES values too short for ${n} rows`);
    cols.push([code, values.subarray(pos, pos + w)]);
    pos += w;
  }
  if (pos !== values.length) throw new DeltaError(`VIEW piece ${i}: MOVES values have ${values.length - pos} extra bytes`);
  return [17, tick, base, count, null, null, [[mask, [first, "u8", gaps], cols]]];
}
function cloneReplica(rep) {
  const out = new Replica(rep.schema);
  if (rep.tick !== null) out.load(rep.tick, rep.ids, rep.columns);
  return out;
}
function emptyColumns(schema) {
  const out = {};
  for (const f of schema.fields) out[f.name] = [];
  return out;
}
function difference(a, b) {
  const out = [];
  let j = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    while (j < b.length && b[j] < v) j++;
    if (j >= b.length || b[j] !== v) out.push(v);
  }
  return Uint32Array.from(out);
}

// src/interpolation.js
var TWO_PI = 2 * Math.PI;
function isFloatArray(a) {
  return a instanceof Float32Array || a instanceof Float64Array;
}
function mergeIds(idsA, idsB) {
  const na = idsA.length;
  const nb = idsB.length;
  const ids = new Uint32Array(na + nb);
  const posA = new Int32Array(na);
  const posB = new Int32Array(nb);
  const commonA = new Int32Array(Math.min(na, nb));
  const commonB = new Int32Array(Math.min(na, nb));
  let i = 0;
  let j = 0;
  let n = 0;
  let c = 0;
  while (i < na && j < nb) {
    const x = idsA[i];
    const y = idsB[j];
    if (x === y) {
      commonA[c] = i;
      commonB[c] = j;
      c++;
      posA[i++] = n;
      posB[j++] = n;
      ids[n++] = x;
    } else if (x < y) {
      posA[i++] = n;
      ids[n++] = x;
    } else {
      posB[j++] = n;
      ids[n++] = y;
    }
  }
  while (i < na) {
    posA[i++] = n;
    ids[n++] = idsA[i - 1];
  }
  while (j < nb) {
    posB[j++] = n;
    ids[n++] = idsB[j - 1];
  }
  return {
    ids: ids.subarray(0, n),
    posA,
    posB,
    commonA: commonA.subarray(0, c),
    commonB: commonB.subarray(0, c)
  };
}
function sameCtor(a, b) {
  if (a.constructor === b.constructor) return a.constructor;
  if (isFloatArray(a) || isFloatArray(b)) return Float64Array;
  return Float64Array;
}
function interpolate(idsA, colsA, idsB, colsB, alpha, opts = {}) {
  alpha = Math.min(Math.max(Number(alpha), 0), 1);
  const fields = opts.fields ? new Set(opts.fields) : null;
  const angles = new Set(opts.angles ?? []);
  if (sameIds(idsA, idsB)) return interpolateAligned(idsA, colsA, colsB, alpha, fields, angles);
  const m = mergeIds(idsA, idsB);
  const n = m.ids.length;
  const { posA, posB, commonA, commonB } = m;
  const out = {};
  const names = Object.keys(colsA).concat(Object.keys(colsB).filter((k) => !(k in colsA)));
  for (const name of names) {
    const a = colsA[name];
    const b = colsB[name];
    if (a === void 0 || b === void 0) {
      const src = b !== void 0 ? b : a;
      const pos = b !== void 0 ? posB : posA;
      const col2 = new src.constructor(n);
      for (let k = 0; k < pos.length; k++) col2[pos[k]] = src[k];
      out[name] = col2;
      continue;
    }
    const Ctor = sameCtor(a, b);
    const col = new Ctor(n);
    for (let k = 0; k < posB.length; k++) col[posB[k]] = b[k];
    for (let k = 0; k < posA.length; k++) col[posA[k]] = a[k];
    const lerp = fields ? fields.has(name) : isFloatArray(col);
    if (lerp && isFloatArray(col) && commonA.length) {
      const isAngle = angles.has(name);
      for (let k = 0; k < commonA.length; k++) {
        const va = a[commonA[k]];
        let diff = b[commonB[k]] - va;
        if (isAngle) {
          const r = (diff + Math.PI) % TWO_PI;
          diff = (r < 0 ? r + TWO_PI : r) - Math.PI;
        }
        col[posA[commonA[k]]] = va + diff * alpha;
      }
    }
    out[name] = col;
  }
  return { ids: m.ids, columns: out };
}
function sameIds(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
function lerpInto(out, a, b, alpha, isAngle) {
  const n = out.length;
  if (!isAngle) {
    for (let i = 0; i < n; i++) out[i] = a[i] + (b[i] - a[i]) * alpha;
    return;
  }
  for (let i = 0; i < n; i++) {
    const r = (b[i] - a[i] + Math.PI) % TWO_PI;
    out[i] = a[i] + ((r < 0 ? r + TWO_PI : r) - Math.PI) * alpha;
  }
}
function interpolateAligned(ids, colsA, colsB, alpha, fields, angles) {
  const out = {};
  const names = Object.keys(colsA).concat(Object.keys(colsB).filter((k) => !(k in colsA)));
  for (const name of names) {
    const a = colsA[name];
    const b = colsB[name];
    if (a === void 0 || b === void 0) {
      out[name] = (b ?? a).slice();
      continue;
    }
    const Ctor = sameCtor(a, b);
    const col = a.constructor === Ctor ? a.slice() : Ctor.from(a);
    const lerp = fields ? fields.has(name) : isFloatArray(col);
    if (lerp && isFloatArray(col) && col.length) lerpInto(col, a, b, alpha, angles.has(name));
    out[name] = col;
  }
  return { ids: ids.slice(), columns: out };
}
function copyColumn(c) {
  return c.slice();
}
var InterpolationBuffer = class {
  /**
   * @param {{delay?: number, clock?: () => number, capacity?: number, tickRate?: number | null,
   *   fields?: Iterable<string> | null, angles?: Iterable<string>}} [opts]
   *   delay in seconds (default 0.1); clock in seconds (default performance.now() / 1000).
   */
  constructor(opts = {}) {
    const delay = opts.delay ?? 0.1;
    const capacity = opts.capacity ?? 32;
    if (delay < 0) throw new RangeError("delay must be >= 0 seconds");
    if (capacity < 2) throw new RangeError("capacity must be >= 2 snapshots");
    this.delay = delay;
    this.clock = opts.clock ?? (() => performance.now() / 1e3);
    this.capacity = capacity;
    this.tickRate = opts.tickRate ?? null;
    this.fields = opts.fields ? [...opts.fields] : null;
    this.angles = [...opts.angles ?? []];
    this._entries = [];
    this._lastRender = null;
    this.starvedFrames = 0;
  }
  get length() {
    return this._entries.length;
  }
  /** Forget every snapshot (after a reconnect to another room, say). */
  clear() {
    this._entries.length = 0;
    this._lastRender = null;
  }
  /**
   * Store a snapshot taken at serverTime (seconds). The arrays are copied. An older or equal
   * one is ignored (a duplicate after a resume); a jump back by more than 1 s means the server
   * restarted its clock: the buffer is reset.
   */
  push(serverTime, ids, columns, now) {
    const arrival = now === void 0 ? this.clock() : now;
    const entries = this._entries;
    if (entries.length) {
      const last = entries[entries.length - 1].serverTime;
      if (serverTime <= last) {
        if (last - serverTime <= 1) return;
        this.clear();
      }
    }
    const cols = {};
    for (const k of Object.keys(columns)) cols[k] = copyColumn(columns[k]);
    entries.push({
      serverTime: Number(serverTime),
      offset: arrival - Number(serverTime),
      ids: ids instanceof Uint32Array ? ids.slice() : Uint32Array.from(ids),
      columns: cols
    });
    if (entries.length > this.capacity) entries.shift();
  }
  /** push() with serverTime = tick / tickRate (tickRate must be set). */
  pushTick(tick, ids, columns, now) {
    if (!this.tickRate) throw new Error("InterpolationBuffer.pushTick needs tickRate");
    this.push(tick / this.tickRate, ids, columns, now);
  }
  /** Estimated local clock - server clock (seconds), null while empty. */
  get clockOffset() {
    if (!this._entries.length) return null;
    let m = Infinity;
    for (const e of this._entries) if (e.offset < m) m = e.offset;
    return m;
  }
  /** Estimated current server time (seconds), null while empty. */
  serverTime(now) {
    const off = this.clockOffset;
    if (off === null) return null;
    return (now === void 0 ? this.clock() : now) - off;
  }
  /** The render time (server seconds) of the last sample(): what is on screen; null before. */
  get lastRenderTime() {
    return this._lastRender;
  }
  /** serverTime(now) - delay, never decreasing between sample() calls; null while empty. */
  renderTime(now) {
    const st = this.serverTime(now);
    if (st === null) return null;
    let rt = st - this.delay;
    if (this._lastRender !== null && rt < this._lastRender) rt = this._lastRender;
    return rt;
  }
  /**
   * The frame to draw at local time `now` (default: the clock); null if empty.
   * @returns {import("../index").Frame | null}
   */
  sample(now) {
    const rt = this.renderTime(now);
    if (rt === null) return null;
    this._lastRender = rt;
    const entries = this._entries;
    const first = entries[0];
    if (rt <= first.serverTime) {
      return frame(rt, first.ids, first.columns, 0, first.serverTime, null, false);
    }
    const last = entries[entries.length - 1];
    if (rt >= last.serverTime) {
      const starved = rt > last.serverTime;
      if (starved) this.starvedFrames += 1;
      return frame(rt, last.ids, last.columns, 1, last.serverTime, null, starved);
    }
    let i = entries.length - 2;
    while (entries[i].serverTime > rt) i--;
    const a = entries[i];
    const b = entries[i + 1];
    const alpha = (rt - a.serverTime) / (b.serverTime - a.serverTime);
    const r = interpolate(a.ids, a.columns, b.ids, b.columns, alpha, {
      fields: this.fields,
      angles: this.angles
    });
    return frame(rt, r.ids, r.columns, alpha, a.serverTime, b.serverTime, false);
  }
};
function frame(renderTime, ids, columns, alpha, olderTime, newerTime, starved) {
  return { renderTime, ids, columns, alpha, olderTime, newerTime, starved };
}

// src/prediction.js
var AckTracker = class {
  constructor(capacity = 256) {
    this._ticks = [];
    this._seqs = [];
    this._capacity = capacity;
    this._floor = 0;
    this.lastSeq = 0;
  }
  /** Record INPUT_ACK {s: seq, t: tick}. Acks for older seqs are ignored. */
  ack(seq, tick) {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    const n = this._ticks.length;
    if (n && tick < this._ticks[n - 1]) tick = this._ticks[n - 1];
    this._ticks.push(tick);
    this._seqs.push(seq);
    if (this._ticks.length > this._capacity) {
      const drop = this._ticks.length - Math.floor(this._capacity / 2);
      this._floor = this._seqs[drop - 1];
      this._ticks.splice(0, drop);
      this._seqs.splice(0, drop);
    }
  }
  /** The largest acknowledged seq applied in a tick <= `tick` (0 if none). */
  ackedAt(tick) {
    let lo = 0;
    let hi = this._ticks.length;
    while (lo < hi) {
      const mid = lo + hi >>> 1;
      if (this._ticks[mid] <= tick) lo = mid + 1;
      else hi = mid;
    }
    return lo ? this._seqs[lo - 1] : this._floor;
  }
  /** Forget everything (a new session: seqs restart at 1). */
  reset() {
    this._ticks.length = 0;
    this._seqs.length = 0;
    this._floor = 0;
    this.lastSeq = 0;
  }
};
var Predictor = class {
  /**
   * @param {(state: S, inputs: Record<string, any>) => S} step
   * @param {S} initial
   * @param {{clock?: () => number, maxPending?: number, maxAge?: number,
   *   error?: ((a: S, b: S) => number) | null, tolerance?: number}} [opts]
   *   clock in seconds (default performance.now() / 1000); maxAge seconds (default 5).
   */
  constructor(step, initial, opts = {}) {
    const maxPending = opts.maxPending ?? 256;
    if (maxPending < 1) throw new RangeError("maxPending must be >= 1");
    this._step = step;
    this._clock = opts.clock ?? (() => performance.now() / 1e3);
    this._maxPending = maxPending;
    this._maxAge = opts.maxAge ?? 5;
    this._error = opts.error ?? null;
    this._tolerance = opts.tolerance ?? 1e-6;
    this._pending = [];
    this.authoritative = initial;
    this.state = initial;
    this.ackedSeq = 0;
    this.lastError = 0;
    this.mispredictions = 0;
    this.expired = 0;
    this.latency = null;
  }
  /** Inputs sent and not yet included in the authoritative state, oldest first (a copy). */
  get pending() {
    return this._pending.slice();
  }
  /** An input was just sent with `seq`: predict its effect; returns the new state. */
  record(seq, inputs) {
    if (seq <= this.ackedSeq) throw new RangeError(`input seq ${seq} is already acknowledged (${this.ackedSeq})`);
    const p = this._pending;
    if (p.length && seq <= p[p.length - 1].seq) {
      throw new RangeError(`input seq ${seq} not after ${p[p.length - 1].seq}`);
    }
    if (p.length === this._maxPending) {
      this.expired += 1;
      p.shift();
    }
    p.push({ seq, data: { ...inputs }, sentAt: this._clock() });
    this.state = this._step(this.state, inputs);
    return this.state;
  }
  /**
   * Restart from the server's state (which includes inputs up to ackedSeq) and replay the
   * newer pending inputs. Returns the new predicted state.
   */
  reconcile(authoritative, ackedSeq) {
    const now = this._clock();
    const p = this._pending;
    if (ackedSeq < this.ackedSeq) ackedSeq = this.ackedSeq;
    let k = 0;
    while (k < p.length && p[k].seq <= ackedSeq) {
      if (p[k].seq === ackedSeq) this.latency = now - p[k].sentAt;
      k++;
    }
    while (k < p.length && now - p[k].sentAt > this._maxAge) {
      k++;
      this.expired += 1;
    }
    if (k) p.splice(0, k);
    this.ackedSeq = ackedSeq;
    this.authoritative = authoritative;
    let state = authoritative;
    for (const x of p) state = this._step(state, x.data);
    if (this._error !== null) {
      this.lastError = Number(this._error(this.state, state));
      if (this.lastError > this._tolerance) this.mispredictions += 1;
    }
    this.state = state;
    return state;
  }
  /** Forget every pending input and start from `state` (a new session). */
  reset(state) {
    this._pending.length = 0;
    this.ackedSeq = 0;
    this.authoritative = state;
    this.state = state;
  }
};

// src/stats.js
var Stats = class {
  /** @param {{windowMs?: number, now?: () => number}} [opts] */
  constructor(opts = {}) {
    this.windowMs = opts.windowMs ?? 1e3;
    this._now = opts.now ?? (() => performance.now());
    this.rtt = null;
    this.rttSmoothed = null;
    this.bytesReceived = 0;
    this.bytesSent = 0;
    this.messagesReceived = 0;
    this.deltasReceived = 0;
    this.lastTick = null;
    this.lastDeltaAt = null;
    this.reconnects = 0;
    this.redirects = 0;
    this.inputsResent = 0;
    this._rtts = [];
    this._cap = 512;
    this._t = new Float64Array(this._cap);
    this._b = new Float64Array(this._cap);
    this._head = 0;
    this._len = 0;
    this._sum = 0;
  }
  /** Record one received message of `n` bytes. */
  received(n) {
    const now = this._now();
    this.bytesReceived += n;
    this.messagesReceived += 1;
    this._expire(now);
    if (this._len === this._cap) {
      this._sum -= this._b[this._head];
      this._head = (this._head + 1) % this._cap;
      this._len -= 1;
    }
    const i = (this._head + this._len) % this._cap;
    this._t[i] = now;
    this._b[i] = n;
    this._len += 1;
    this._sum += n;
  }
  /** Record `n` bytes sent. */
  sent(n) {
    this.bytesSent += n;
  }
  /** Record a DELTA for `tick`. */
  delta(tick) {
    this.deltasReceived += 1;
    this.lastTick = tick;
    this.lastDeltaAt = this._now();
  }
  /** Record a PONG for a PING sent at `sentAt` (same clock). */
  pong(sentAt) {
    const rtt = Math.max(0, this._now() - sentAt);
    this.rtt = rtt;
    this._rtts.push(rtt);
    if (this._rtts.length > 8) this._rtts.shift();
    this.rttSmoothed = this.rttSmoothed === null ? rtt : this.rttSmoothed + (rtt - this.rttSmoothed) / 8;
  }
  _expire(now) {
    const cutoff = now - this.windowMs;
    while (this._len > 0 && this._t[this._head] < cutoff) {
      this._sum -= this._b[this._head];
      this._head = (this._head + 1) % this._cap;
      this._len -= 1;
    }
  }
  /** Median of the last 8 RTT samples (ms): robust to one slow sample; null before any. */
  get rttMedian() {
    if (!this._rtts.length) return null;
    const s = this._rtts.slice().sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }
  /** Received bytes per second over the window. */
  get bytesPerSec() {
    this._expire(this._now());
    return this._sum * 1e3 / this.windowMs;
  }
  /** Milliseconds since the newest DELTA arrived (null before the first). */
  get tickAge() {
    return this.lastDeltaAt === null ? null : this._now() - this.lastDeltaAt;
  }
  /** A plain-object copy, for display or logging. */
  snapshot() {
    return {
      rtt: this.rtt,
      rttSmoothed: this.rttSmoothed,
      rttMedian: this.rttMedian,
      bytesPerSec: this.bytesPerSec,
      tickAge: this.tickAge,
      lastTick: this.lastTick,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      messagesReceived: this.messagesReceived,
      deltasReceived: this.deltasReceived,
      reconnects: this.reconnects
    };
  }
};

// src/client.js
var NO_RETRY = /* @__PURE__ */ new Set([
  CloseCode.NORMAL,
  1002,
  1003,
  1007,
  1008,
  1009,
  1010,
  CloseCode.PROTOCOL_MISUSE,
  CloseCode.UNAUTHORIZED,
  CloseCode.ROOM_FULL,
  CloseCode.UNKNOWN_ROOM,
  CloseCode.VERSION_MISMATCH,
  CloseCode.JOIN_REJECTED,
  CloseCode.INPUT_FLOOD,
  CloseCode.ROOM_CRASHED,
  CloseCode.SESSION_REPLACED,
  CloseCode.HELLO_TIMEOUT
]);
var JOIN_CODES = /* @__PURE__ */ new Set([4001, 4002, 4003, 4004, 4006]);
var MAX_HOPS = 3;
var MAX_PENDING_INPUTS = 1024;
var CLIENT_PROTOCOL_CLOSE = 4e3;
var VIEW_EXT = Object.freeze(["interest", "interest/2"]);
function clip(reason) {
  const enc = new TextEncoder();
  let r = reason;
  while (enc.encode(r).length > 123) r = r.slice(0, -1);
  return r;
}
var GameClient = class {
  /**
   * @param {string} url ws:// or wss:// URL of the game endpoint (e.g. wss://host/ws)
   * @param {import("../index").ClientOptions} [opts]
   */
  constructor(url, opts = {}) {
    this.url = url;
    this.opts = {
      name: opts.name ?? null,
      game: opts.game ?? null,
      room: opts.room ?? null,
      token: opts.token ?? null,
      interest: opts.interest ?? true,
      spectate: opts.spectate ?? false,
      follow: opts.follow ?? null,
      reconnect: opts.reconnect ?? true,
      backoffInitial: opts.backoffInitial ?? 100,
      backoffMax: opts.backoffMax ?? 5e3,
      jitter: opts.jitter ?? true,
      maxAttempts: opts.maxAttempts ?? Infinity,
      pingInterval: opts.pingInterval ?? 1e3,
      stallTimeout: opts.stallTimeout ?? 5e3,
      interpolationDelay: opts.interpolationDelay ?? 0.1,
      angles: opts.angles ?? [],
      sendRenderTick: opts.sendRenderTick ?? true,
      step: opts.step ?? null,
      stateOf: opts.stateOf ?? null,
      WebSocket: opts.WebSocket ?? globalThis.WebSocket,
      log: opts.log ?? console
    };
    this.status = "idle";
    this.statusDetail = "";
    this.welcome = null;
    this.playerId = null;
    this.schema = null;
    this.world = null;
    this.interpolation = new InterpolationBuffer({ delay: this.opts.interpolationDelay, angles: this.opts.angles });
    this.acks = new AckTracker();
    this.predictor = null;
    this.stats = new Stats();
    this.lastServerError = null;
    this.lastClose = null;
    this.seq = 0;
    this.attempt = 0;
    this._ws = null;
    this._resume = null;
    this._handlers = /* @__PURE__ */ new Map();
    this._pingTimer = null;
    this._retryTimer = null;
    this._nextRetryAt = null;
    this._userClosed = false;
    this._fatal = null;
    this._pings = /* @__PURE__ */ new Map();
    this._lastMessageAt = 0;
    this._resyncs = 0;
    this.serverTick = null;
    this.hops = [];
    this._moved = false;
    this.pendingInputs = [];
  }
  // ---------------------------------------------------------------- events
  /**
   * Subscribe to an event: "status", "welcome", "delta", "event", "servererror", "ack",
   * "close", "fatal". Returns an unsubscribe function.
   */
  on(type, fn) {
    let set = this._handlers.get(type);
    if (!set) this._handlers.set(type, set = /* @__PURE__ */ new Set());
    set.add(fn);
    return () => set.delete(fn);
  }
  _emit(type, detail) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(detail);
      } catch (e) {
        this.opts.log.error(`gameclient: "${type}" handler threw`, e);
      }
    }
  }
  _setStatus(status, detail = "") {
    if (this.status === status && this.statusDetail === detail) return;
    this.status = status;
    this.statusDetail = detail;
    this._emit("status", { status, detail });
  }
  // ---------------------------------------------------------------- public API
  /** Open the connection (idempotent while connecting/connected). */
  connect() {
    if (this._ws && this._ws.readyState <= 1) return;
    this._userClosed = false;
    this._fatal = null;
    this._open();
  }
  /** Leave the game (LEAVE + close 1000) and stop reconnecting. */
  close() {
    this._userClosed = true;
    this._clearTimers();
    const ws = this._ws;
    if (ws && ws.readyState === 1) {
      this._sendRaw(encodeLeave());
      ws.close(1e3, "leaving");
    } else if (ws && ws.readyState === 0) {
      ws.close();
    }
    this._setStatus("closed", "you left the game");
  }
  /** True once WELCOME arrived on the current connection. */
  get joined() {
    return this.status === "connected";
  }
  /** Seconds until the next reconnect attempt (null when none is scheduled). */
  get retryIn() {
    return this._nextRetryAt === null ? null : Math.max(0, (this._nextRetryAt - performance.now()) / 1e3);
  }
  /**
   * Send one input with the next seq; returns the seq, or 0 if not joined (the input is
   * dropped: inputs are only meaningful for the current state).
   * @param {Record<string, number | boolean | string | null>} data
   */
  sendInput(data) {
    if (this._userClosed) throw new Error("GameClient.sendInput after close()");
    if (!this.joined) return 0;
    this.seq = this.seq + 1 >>> 0 || 1;
    const rt = this.opts.sendRenderTick ? this.renderTick : null;
    this._sendRaw(encodeInput(this.seq, data, rt));
    this.pendingInputs.push({ seq: this.seq, data, rt });
    if (this.pendingInputs.length > MAX_PENDING_INPUTS) this.pendingInputs.shift();
    if (this.predictor) this.predictor.record(this.seq, data);
    return this.seq;
  }
  /**
   * Spectators: move the free camera to centre (x, y), size (w, h) world units (clamped by
   * the server), or follow a player id. Returns false when not joined.
   */
  camera(x, y, w = null, h = null, follow = null) {
    if (!this.joined) return false;
    return this._sendRaw(encodeCamera(x, y, w, h, follow));
  }
  /** Send a PING now (also done every pingInterval ms). */
  ping() {
    if (!this._ws || this._ws.readyState !== 1) return;
    const t = Math.round(performance.now() * 1e3) / 1e3;
    this._pings.set(t, true);
    if (this._pings.size > 32) this._pings.delete(this._pings.keys().next().value);
    this._sendRaw(encodePing(t));
  }
  /**
   * Test/debug hook: drop the socket without LEAVE, as a network cut would, so the client
   * reconnects and resumes. Browsers cannot send 1006, so this closes with 3000.
   */
  dropConnection() {
    if (this._ws && this._ws.readyState <= 1) this._ws.close(3e3, "connection dropped by the client");
  }
  /** The local player's entity id: WELCOME "entity", else the entity owned by our player. */
  get entityId() {
    if (!this.welcome) return null;
    if (this.welcome.entity) return this.welcome.entity;
    const w = this.world;
    if (!w || this.playerId === null) return null;
    for (const f of w.schema.fields) {
      if (f.kind !== "player") continue;
      const col = w.column(f.name);
      const r = col.indexOf(this.playerId);
      if (r >= 0) return w.ids[r];
    }
    return null;
  }
  /**
   * The server tick on screen now, sent as INPUT "rt" for the server's lag compensation
   * (SPEC.md section 2): the tick nearest to the render time of the last frame() (the
   * interpolation time), never above the latest tick received; the latest tick when frame()
   * was never called (no interpolation in use); null before the first snapshot.
   * @returns {number | null}
   */
  get renderTick() {
    const w = this.world;
    if (w === null || w.tick === null) return null;
    const shown = this.interpolation.lastRenderTime;
    const rate = this.interpolation.tickRate;
    if (shown === null || !rate) return w.tick;
    return Math.max(0, Math.min(w.tick, Math.round(shown * rate)));
  }
  /** The interpolated frame to draw now (null before the first snapshot). */
  frame(now) {
    return this.interpolation.sample(now);
  }
  // ---------------------------------------------------------------- socket plumbing
  _open() {
    this._clearTimers();
    const resuming = this._resume !== null && performance.now() < this._resume.until;
    this._setStatus(
      this.attempt === 0 ? "connecting" : "reconnecting",
      this.attempt === 0 ? `connecting to ${this.url}` : `reconnecting (attempt ${this.attempt})`
    );
    let ws;
    try {
      ws = new this.opts.WebSocket(this.url, [SUBPROTOCOL]);
    } catch (e) {
      this._fail(`cannot open ${this.url}: ${e instanceof Error ? e.message : e}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    this._lastMessageAt = performance.now();
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._setStatus("joining", resuming ? "resuming session" : "joining");
      if (resuming) this._sendRaw(encodeResume(this._resume.token));
      else this._sendRaw(encodeHello({ ...this.opts, ext: this.opts.interest ? VIEW_EXT : [] }));
      this._pingTimer = setInterval(() => this._tick(), this.opts.pingInterval);
    };
    ws.onmessage = (ev) => {
      if (ws !== this._ws) return;
      this._onMessage(ev.data);
    };
    ws.onerror = () => {
    };
    ws.onclose = (ev) => {
      if (ws !== this._ws) return;
      this._onClose(ev.code, ev.reason, ev.wasClean);
    };
  }
  _tick() {
    if (this.status === "connected" || this.status === "joining") {
      const silent = performance.now() - this._lastMessageAt;
      if (silent > this.opts.stallTimeout) {
        this.opts.log.warn(`gameclient: no message from the server for ${Math.round(silent)} ms, reconnecting`);
        this._ws?.close(3001, "server stalled");
        this._onClose(1006, "server stalled", false);
        return;
      }
      this.ping();
    }
  }
  _sendRaw(bytes) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(bytes);
    this.stats.sent(bytes.byteLength);
    return true;
  }
  _clearTimers() {
    if (this._pingTimer !== null) clearInterval(this._pingTimer);
    if (this._retryTimer !== null) clearTimeout(this._retryTimer);
    this._pingTimer = null;
    this._retryTimer = null;
    this._nextRetryAt = null;
  }
  /** The server broke the protocol: log once, close, stop. */
  _protocolFailure(err) {
    const msg = err instanceof Error ? err.message : String(err);
    this.opts.log.error(`gameclient: malformed data from the server, closing: ${msg}`);
    this._fatal = { kind: "protocol", message: msg };
    const ws = this._ws;
    this._ws = null;
    this._clearTimers();
    if (ws && ws.readyState <= 1) ws.close(CLIENT_PROTOCOL_CLOSE, clip(`malformed server message: ${msg}`));
    this._setStatus("error", `the server sent malformed data: ${msg}`);
    this._emit("fatal", { kind: "protocol", message: msg });
    this._emit("close", { code: CLIENT_PROTOCOL_CLOSE, reason: msg, willReconnect: false });
  }
  _fail(message) {
    this._fatal = { kind: "error", message };
    this._clearTimers();
    this._setStatus("error", message);
    this._emit("fatal", { kind: "error", message });
  }
  _onMessage(data) {
    this._lastMessageAt = performance.now();
    if (!(data instanceof ArrayBuffer)) {
      this._protocolFailure(new ProtocolError("text WebSocket message (the protocol is binary only)"));
      return;
    }
    this.stats.received(data.byteLength);
    let msg;
    try {
      msg = decodeMessage(new Uint8Array(data), "server");
    } catch (e) {
      if (e instanceof ProtocolError && e.code === ErrorCode.UNKNOWN_TYPE) {
        this.opts.log.info(`gameclient: ignoring a message: ${e.message}`);
        return;
      }
      this._protocolFailure(e);
      return;
    }
    try {
      this._dispatch(msg);
    } catch (e) {
      if (e instanceof DeltaError && (msg.type === MsgType.DELTA || msg.type === MsgType.VIEW) && this._resyncs === 0 && this._resume) {
        this._resyncs += 1;
        this.opts.log.error(`gameclient: a DELTA did not apply (${e.message}); resynchronizing`);
        this._ws?.close(CLIENT_PROTOCOL_CLOSE, clip(`delta did not apply: ${e.message}`));
        this._onClose(1006, "resynchronizing after a delta that did not apply", false);
      } else if (e instanceof ProtocolError) {
        this._protocolFailure(e);
      } else {
        throw e;
      }
    }
  }
  _dispatch(msg) {
    switch (msg.type) {
      case MsgType.WELCOME:
        return this._onWelcome(msg);
      case MsgType.DELTA:
        return this._onDelta(msg);
      case MsgType.VIEW:
        return this._onView(msg);
      case MsgType.INPUT_ACK:
        this.acks.ack(msg.s, msg.t);
        this._dropAcked(msg.s);
        this._emit("ack", msg);
        return;
      case MsgType.EVENT:
        this._emit("event", { kind: msg.k, data: msg.d });
        return;
      case MsgType.ERROR:
        this.lastServerError = msg.url ? { code: msg.c, message: msg.m, url: msg.url } : { code: msg.c, message: msg.m };
        this.opts.log.warn(`gameclient: server ERROR ${msg.c}: ${msg.m}`);
        this._emit("servererror", { code: msg.c, message: msg.m });
        return;
      case MsgType.PONG:
        if (this._pings.delete(msg.t)) this.stats.pong(msg.t);
        this.serverTick = msg.st;
        return;
      default:
        this.opts.log.info(`gameclient: ignoring message type ${msg.type}`);
    }
  }
  _onWelcome(w) {
    if (this.welcome !== null && this.status === "connected") {
      throw new ProtocolError("second WELCOME on one connection");
    }
    const schema = w.schema;
    const sameSession = this.playerId !== null && w.player === this.playerId;
    this.welcome = w;
    this.playerId = w.player;
    this.schema = schema;
    this.world = (w.ext || []).includes("interest") ? new ViewReplica(schema) : new Replica(schema);
    this.interpolation.clear();
    this.interpolation.tickRate = w.tick_rate;
    this.interpolation.fields = null;
    this.serverTick = w.tick;
    this.predictor = null;
    if (!sameSession) {
      this.seq = 0;
      this.acks.reset();
      this.pendingInputs = [];
    }
    this.hops = [];
    this._resume = { token: w.resume, until: Number.POSITIVE_INFINITY, grace: w.resume_grace };
    if (this.attempt > 0) this.stats.reconnects += 1;
    this.attempt = 0;
    this.lastServerError = null;
    this._setStatus("connected", sameSession ? "resumed" : "joined");
    this.ping();
    this._emit("welcome", { welcome: w, resumed: sameSession });
    if (this._moved && sameSession) this._resendPending();
    this._moved = false;
  }
  _dropAcked(s) {
    const p = this.pendingInputs;
    let n = 0;
    while (n < p.length && p[n].seq <= s) n++;
    if (n) p.splice(0, n);
  }
  /** After a 4014 move: the inputs the old node had not acknowledged, oldest first. */
  _resendPending() {
    for (const { seq, data, rt } of this.pendingInputs) {
      this._sendRaw(encodeInput(seq, data, rt));
      this.stats.inputsResent += 1;
    }
  }
  /** 4013 / 4014: the URL to follow (the ERROR's url, else a ws:// close reason), or null. */
  _redirectUrl(reason) {
    const err = this.lastServerError;
    for (const u of [err && (err.code === 4013 || err.code === 4014) ? err.url : null, reason]) {
      if (typeof u === "string" && /^wss?:\/\//.test(u)) return u;
    }
    return null;
  }
  _onDelta(d) {
    if (this.world === null) throw new ProtocolError("DELTA before WELCOME");
    this.world.apply(d);
    this._resyncs = 0;
    this.stats.delta(d.tick);
    const w = this.world;
    this.interpolation.pushTick(d.tick, w.ids, w.allValues());
    if (this.opts.step && this.opts.stateOf) this._reconcile(d.tick);
    this._emit("delta", { tick: d.tick, world: w });
  }
  _onView(v) {
    const w = this.world;
    if (!(w instanceof ViewReplica)) throw new ProtocolError("VIEW without the interest extension");
    w.apply(v.raw);
    this._resyncs = 0;
    this.stats.delta(v.tick);
    this.interpolation.pushTick(v.tick, w.ids, w.allValues());
    if (this.opts.step && this.opts.stateOf) this._reconcile(v.tick);
    this._emit("delta", { tick: v.tick, world: w });
    this._emit("view", { tick: v.tick, entered: w.entered, leftView: w.leftView, despawned: w.despawned });
  }
  _reconcile(tick) {
    const id = this.entityId;
    if (id === null) return;
    const row = this.world.rowOf(id);
    if (row < 0) return;
    const auth = this.opts.stateOf(this.world, row);
    if (this.predictor === null) {
      this.predictor = new Predictor(this.opts.step, auth);
      this.predictor.ackedSeq = this.acks.ackedAt(tick);
    }
    this.predictor.reconcile(auth, this.acks.ackedAt(tick));
  }
  _onClose(code, reason, wasClean) {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
    this._clearTimers();
    this.lastClose = { code, reason };
    if (this._userClosed || this._fatal) return;
    if (this._resume && this._resume.until === Number.POSITIVE_INFINITY) {
      this._resume.until = performance.now() + this._resume.grace * 1e3;
    }
    const err = this.lastServerError;
    const explained = reason || (err ? err.message : "") || CLOSE_REASONS[code] || `code ${code}`;
    if (code === CloseCode.REDIRECT || code === CloseCode.MOVED) {
      const url = this._redirectUrl(reason);
      if (url !== null && this.hops.length < MAX_HOPS) {
        this.hops.push(url);
        this.url = url;
        if (code === CloseCode.MOVED) this._moved = true;
        this.lastServerError = null;
        this.stats.redirects += 1;
        this.opts.log.info(`gameclient: ${CLOSE_REASONS[code]}, following to ${url}`);
        this._emit("close", { code, reason: explained, willReconnect: true });
        this._emit("redirect", { code, url });
        this._open();
        return;
      }
      const message = url === null ? `server closed with ${code} but gave no ws:// URL to follow` : `redirect loop: sent on ${this.hops.length + 1} times without a WELCOME (${[...this.hops, url].join(" -> ")})`;
      this._fatal = { kind: "redirect", message };
      this._setStatus("error", message);
      this._emit("fatal", { kind: "redirect", code, message });
      this._emit("close", { code, reason: explained, willReconnect: false });
      return;
    }
    if ((code === CloseCode.RESUME_INVALID || code === CloseCode.WORKER_RESTARTED) && this._resume) {
      this.opts.log.info(`gameclient: resume refused (${explained}), joining as a new player`);
      this._resume = null;
      this.playerId = null;
      if (code === CloseCode.WORKER_RESTARTED) this.opts.room = null;
      this._emit("close", { code, reason: explained, willReconnect: true });
      this._scheduleReconnect(0);
      return;
    }
    if (JOIN_CODES.has(code) || err && JOIN_CODES.has(err.code) && code !== 1006) {
      const c = JOIN_CODES.has(code) ? code : err.code;
      this._fatal = { kind: "rejected", message: explained };
      this._setStatus("rejected", `${CLOSE_REASONS[c] ?? "rejected"}: ${explained}`);
      this._emit("fatal", { kind: "rejected", code: c, message: explained });
      this._emit("close", { code, reason: explained, willReconnect: false });
      return;
    }
    const retry = this.opts.reconnect && !NO_RETRY.has(code) && this.attempt < this.opts.maxAttempts;
    this._emit("close", { code, reason: explained, willReconnect: retry });
    if (!retry) {
      this._fatal = { kind: "closed", message: explained };
      this._setStatus("closed", `disconnected (${code}): ${explained}`);
      return;
    }
    this._scheduleReconnect();
  }
  _scheduleReconnect(delayMs) {
    const n = this.attempt++;
    const bound = Math.min(this.opts.backoffMax, this.opts.backoffInitial * 2 ** Math.min(n, 30));
    const wait = delayMs ?? (this.opts.jitter ? Math.random() * bound : bound);
    this._nextRetryAt = performance.now() + wait;
    this._setStatus("reconnecting", `connection lost, retrying in ${(wait / 1e3).toFixed(1)} s`);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._nextRetryAt = null;
      this._open();
    }, wait);
  }
};
export {
  AckTracker,
  CLIENT_PROTOCOL_CLOSE,
  CLOSE_REASONS,
  CloseCode,
  DTYPES,
  DeltaError,
  ErrorCode,
  GameClient,
  InterpolationBuffer,
  LIMITS,
  MsgType,
  PROTOCOL_VERSION,
  Predictor,
  ProtocolError,
  Replica,
  SUBPROTOCOL,
  Stats,
  ViewReplica,
  WireField,
  WireSchema,
  decodeDelta,
  decodeIdList,
  decodeMessage,
  encodeCamera,
  encodeHello,
  encodeInput,
  encodeLeave,
  encodeMessage,
  encodePing,
  encodeResume,
  interpolate,
  unpack
};
