// A small JSON value with a parser and a printer, for envelopes, context
// values and host documents.

export const NULL: i32 = 0;
export const BOOL: i32 = 1;
export const NUMBER: i32 = 2;
export const STRING: i32 = 3;
export const ARRAY: i32 = 4;
export const OBJECT: i32 = 5;

export class Value {
  kind: i32 = NULL;
  b: bool = false;
  n: f64 = 0;
  s: string = "";
  items: Array<Value> = new Array<Value>();
  keys: Array<string> = new Array<string>();

  static null(): Value { return new Value(); }
  static bool(b: bool): Value { const v = new Value(); v.kind = BOOL; v.b = b; return v; }
  static number(n: f64): Value { const v = new Value(); v.kind = NUMBER; v.n = n; return v; }
  static string(s: string): Value { const v = new Value(); v.kind = STRING; v.s = s; return v; }
  static array(): Value { const v = new Value(); v.kind = ARRAY; return v; }
  static object(): Value { const v = new Value(); v.kind = OBJECT; return v; }

  // get returns the member key of an object, or a null value.
  get(key: string): Value {
    if (this.kind == OBJECT) {
      for (let i = 0; i < this.keys.length; i++) {
        if (this.keys[i] == key) return this.items[i];
      }
    }
    return Value.null();
  }

  // set adds or replaces the member key of an object; it returns this.
  set(key: string, v: Value): Value {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) { this.items[i] = v; return this; }
    }
    this.keys.push(key);
    this.items.push(v);
    return this;
  }

  push(v: Value): Value { this.items.push(v); return this; }

  isNull(): bool { return this.kind == NULL; }

  toString(): string {
    switch (this.kind) {
      case BOOL: return this.b ? "true" : "false";
      case NUMBER: {
        if (!isFinite(this.n)) return "null";
        if (this.n == Math.floor(this.n) && Math.abs(this.n) < 1e15) return (<i64>this.n).toString();
        return this.n.toString();
      }
      case STRING: return quote(this.s);
      case ARRAY: {
        const parts = new Array<string>();
        for (let i = 0; i < this.items.length; i++) parts.push(this.items[i].toString());
        return "[" + parts.join(",") + "]";
      }
      case OBJECT: {
        const parts = new Array<string>();
        for (let i = 0; i < this.keys.length; i++) parts.push(quote(this.keys[i]) + ":" + this.items[i].toString());
        return "{" + parts.join(",") + "}";
      }
    }
    return "null";
  }
}

const HEX = "0123456789abcdef";

// quote returns s as a JSON string.
export function quote(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else if (c < 0x20) out += "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

class Parser {
  s: string;
  i: i32 = 0;
  depth: i32 = 0;
  err: string = "";
  constructor(s: string) { this.s = s; }

  fail(what: string): Value {
    if (this.err == "") this.err = what + " at " + this.i.toString();
    return Value.null();
  }

  ws(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.i++;
    }
  }

  lit(word: string, v: Value): Value {
    if (this.s.substr(this.i, word.length) != word) return this.fail("bad literal");
    this.i += word.length;
    return v;
  }

  value(): Value {
    this.ws();
    if (this.i >= this.s.length) return this.fail("unexpected end");
    const c = this.s.charCodeAt(this.i);
    if (c == 0x6e) return this.lit("null", Value.null());
    if (c == 0x74) return this.lit("true", Value.bool(true));
    if (c == 0x66) return this.lit("false", Value.bool(false));
    if (c == 0x22) return Value.string(this.str());
    if (c == 0x5b || c == 0x7b) {
      if (++this.depth > 512) return this.fail("nested too deep");
      const v = c == 0x5b ? this.arr() : this.obj();
      this.depth--;
      return v;
    }
    return this.num();
  }

  arr(): Value {
    const v = Value.array();
    this.i++;
    this.ws();
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 0x5d) { this.i++; return v; }
    while (this.err == "") {
      v.push(this.value());
      this.ws();
      const c = this.i < this.s.length ? this.s.charCodeAt(this.i) : 0;
      this.i++;
      if (c == 0x5d) return v;
      if (c != 0x2c) return this.fail("expected , or ]");
    }
    return v;
  }

  obj(): Value {
    const v = Value.object();
    this.i++;
    this.ws();
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 0x7d) { this.i++; return v; }
    while (this.err == "") {
      this.ws();
      if (this.i >= this.s.length || this.s.charCodeAt(this.i) != 0x22) return this.fail("expected a key");
      const k = this.str();
      this.ws();
      if (this.i >= this.s.length || this.s.charCodeAt(this.i) != 0x3a) return this.fail("expected :");
      this.i++;
      v.set(k, this.value());
      this.ws();
      const c = this.i < this.s.length ? this.s.charCodeAt(this.i) : 0;
      this.i++;
      if (c == 0x7d) return v;
      if (c != 0x2c) return this.fail("expected , or }");
    }
    return v;
  }

  str(): string {
    this.i++;
    let out = "";
    let start = this.i;
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c == 0x22) {
        out += this.s.substring(start, this.i);
        this.i++;
        return out;
      }
      if (c != 0x5c) { this.i++; continue; }
      out += this.s.substring(start, this.i);
      const e = this.s.charCodeAt(this.i + 1);
      this.i += 2;
      if (e == 0x6e) out += "\n";
      else if (e == 0x74) out += "\t";
      else if (e == 0x72) out += "\r";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x75) {
        out += String.fromCharCode(<i32>I32.parseInt(this.s.substr(this.i, 4), 16));
        this.i += 4;
      } else out += String.fromCharCode(e);
      start = this.i;
    }
    this.fail("unterminated string");
    return out;
  }

  num(): Value {
    const start = this.i;
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (!((c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45)) break;
      this.i++;
    }
    if (this.i == start) return this.fail("bad value");
    return Value.number(F64.parseFloat(this.s.substring(start, this.i)));
  }
}

// parse parses one JSON document; a malformed one gives a null value and
// err() says why.
export function parse(s: string): Value {
  const p = new Parser(s);
  const v = p.value();
  p.ws();
  if (p.err == "" && p.i != s.length) p.fail("trailing characters");
  lastError = p.err;
  return p.err == "" ? v : Value.null();
}

let lastError = "";

// err is why the last parse failed, or "".
export function err(): string { return lastError; }
