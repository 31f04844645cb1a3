// @12fa/as-pdk — 12fa's guest kit for AssemblyScript (abi v1), on Extism's
// AssemblyScript PDK (@extism/as-pdk). See README.md.

import { Config, Host, Memory } from "@extism/as-pdk";
import { error_set, length, output_set } from "@extism/as-pdk/lib/env";
import { OBJECT, Value, parse, quote } from "./json";

export { Value, parse, quote, err } from "./json";

@external("12fa:v1", "ctx_get")
declare function host_ctx_get(key: u64): u64;
@external("12fa:v1", "ctx_set")
declare function host_ctx_set(key: u64, value: u64): u32;
@external("12fa:v1", "log")
declare function host_log(level: i32, msg: u64): u32;
@external("12fa:v1", "input_request")
declare function host_input_request(req: u64): u64;
@external("12fa:v1", "notify")
declare function host_notify(doc: u64): u32;
@external("12fa:v1", "http")
declare function host_http(req: u64): u64;
@external("12fa:v1", "exec")
declare function host_exec(req: u64): u64;

// Log levels and host statuses of abi v1.
export const TRACE: i32 = 0;
export const DEBUG: i32 = 1;
export const INFO: i32 = 2;
export const WARN: i32 = 3;
export const ERROR: i32 = 4;
export const OK: u32 = 0;
export const LIMITED: u32 = 1;
export const DENIED: u32 = 2;

function put(s: string): u64 {
  return Memory.allocateBytes(Uint8Array.wrap(String.UTF8.encode(s))).offset;
}

function get(offset: u64): string {
  return new Memory(offset, length(offset)).toString();
}

// envelope returns the call's envelope {workflow, run_id, step, attempt,
// input, outputs}.
export function envelope(): Value {
  return parse(Host.inputString());
}

// output sets the step's output to a JSON document; return 0.
export function output(json: string): i32 {
  const b = Uint8Array.wrap(String.UTF8.encode(json));
  const m = Memory.allocateBytes(b);
  output_set(m.offset, m.length);
  return 0;
}

// fail sets the step's error document and returns 1, the value to return
// from the export. A non-retryable error is never retried.
export function fail(code: string, message: string, retryable: bool = true): i32 {
  let doc = "{\"code\":" + quote(code) + ",\"message\":" + quote(message);
  if (!retryable) doc += ",\"retryable\":false";
  error_set(put(doc + "}"));
  return 1;
}

// waiting is what a step returns after asking questions that have no
// answer yet: the run waits, and the step runs again once they are
// answered.
export function waiting(): i32 {
  return output("null");
}

// log writes a line to the step's log; LIMITED once over the limits.
export function log(level: i32, message: string): u32 {
  return host_log(level, put(message));
}

// ctxGet returns the workflow context's value under key, or null.
export function ctxGet(key: string): Value | null {
  const off = host_ctx_get(put(key));
  if (off == 0) return null;
  return parse(get(off));
}

// ctxSet sets key to a JSON value ("null" deletes it); durable with the
// step's result.
export function ctxSet(key: string, json: string): u32 {
  return host_ctx_set(put(key), put(json));
}

// ask asks a person a question; it returns the answer once given, null
// while unanswered. Ask every question first, then return waiting() if any
// is unanswered.
export function ask(key: string, question: string, options: Array<string> = []): string | null {
  let req = "{\"key\":" + quote(key) + ",\"question\":" + quote(question);
  if (options.length > 0) {
    const qs = new Array<string>();
    for (let i = 0; i < options.length; i++) qs.push(quote(options[i]));
    req += ",\"options\":[" + qs.join(",") + "]";
  }
  const resp = parse(get(host_input_request(put(req + "}"))));
  const answered = resp.get("answered");
  if (answered.kind == 1 && answered.b) return resp.get("answer").s;
  return null;
}

// notify sends a notification {title, message, priority, tags, click,
// actions}.
export function notify(json: string): u32 {
  return host_notify(put(json));
}

// http sends an HTTP request under the step's allow.hosts grant. req is
// the request document ({"method","url","headers":{"name":["value"]},
// "body"}); the result is the response document ({"status","headers",
// "body" or "body_base64","url"}), whatever its status, or
// {"error":{"code","message"}} when there is none: pass it to httpFailed.
export function http(req: string): Value {
  return parse(get(host_http(put(req))));
}

// exec runs one of the step's allow.commands (no shell). req is the
// request document ({"command","args":[...],"cwd","env":{},"stdin",
// "timeout"}); the result is {"exit_code","stdout","stderr","truncated",
// "duration_ms"}, or {"error":{"code","message"}} when it could not run:
// pass it to httpFailed, which reads any host call's result.
export function exec(req: string): Value {
  return parse(get(host_exec(put(req))));
}

// httpFailed fails the step with a response's error and returns 1 (return
// it from the export), or returns 0 when resp is a response. The code
// (http_timeout, http_denied …) tells the host whether to retry.
export function httpFailed(resp: Value): i32 {
  const e = resp.get("error");
  if (e.kind != OBJECT) return 0;
  error_set(put("{\"code\":" + quote(e.get("code").s) + ",\"message\":" + quote(e.get("message").s) + "}"));
  return 1;
}

// config returns the step's config value for key, or null.
export function config(key: string): string | null {
  return Config.get(key);
}

// abortStep is the step's abort handler (build with
// --use abort=<kit>/abortStep): an AssemblyScript abort becomes a logged
// error and a trap.
export function abortStep(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const m = message === null ? "abort" : message;
  const f = fileName === null ? "?" : fileName;
  host_log(ERROR, put("abort: " + m + " at " + f + ":" + line.toString() + ":" + column.toString()));
  unreachable();
}
