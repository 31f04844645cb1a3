/* runner.c — 12fa's JS step runner: a Wasm plugin that embeds QuickJS and
 * runs a step written in JavaScript (abi v1). The host passes the script
 * through the config keys "12fa.script" (its source), "12fa.script_name"
 * (its file name, for error messages) and "12fa.function" (the function
 * of the script to call, "run" by default); see README.md
 * for the JavaScript API (the `host` object).
 *
 * Start-up (12fa_prepare) makes the JS runtime and context and defines
 * `host` and the driver, so that the host's snapshot of the instance holds
 * them ready: a call only evaluates the script and calls its run(env).
 */
#include "12fa.h"
#include "quickjs.h"

static JSRuntime *rt;
static JSContext *ctx;

static JSValue js_str_or_null(JSContext *c, char *s) {
	if (!s) return JS_NULL;
	JSValue v = JS_NewString(c, s);
	free(s);
	return v;
}

/* arg returns argument i as a C string (the caller frees it with
 * JS_FreeCString), or NULL with an exception pending. */
static const char *arg(JSContext *c, int argc, JSValueConst *argv, int i) {
	if (i >= argc) {
		JS_ThrowTypeError(c, "missing argument %d", i + 1);
		return NULL;
	}
	return JS_ToCString(c, argv[i]);
}

static JSValue raw_log(JSContext *c, JSValueConst this, int argc, JSValueConst *argv) {
	(void)this;
	const char *level = arg(c, argc, argv, 0), *msg = arg(c, argc, argv, 1);
	if (!level || !msg) return JS_EXCEPTION;
	int l = TFA_INFO;
	if (!strcmp(level, "trace")) l = TFA_TRACE;
	else if (!strcmp(level, "debug")) l = TFA_DEBUG;
	else if (!strcmp(level, "warn")) l = TFA_WARN;
	else if (!strcmp(level, "error")) l = TFA_ERROR;
	uint32_t st = tfa_log(l, msg);
	JS_FreeCString(c, level);
	JS_FreeCString(c, msg);
	return JS_NewInt32(c, (int32_t)st);
}

static JSValue raw_ctx_get(JSContext *c, JSValueConst this, int argc, JSValueConst *argv) {
	(void)this;
	const char *key = arg(c, argc, argv, 0);
	if (!key) return JS_EXCEPTION;
	char *v = tfa_ctx_get(key);
	JS_FreeCString(c, key);
	return js_str_or_null(c, v);
}

static JSValue raw_ctx_set(JSContext *c, JSValueConst this, int argc, JSValueConst *argv) {
	(void)this;
	const char *key = arg(c, argc, argv, 0), *json = arg(c, argc, argv, 1);
	if (!key || !json) return JS_EXCEPTION;
	uint32_t st = tfa_ctx_set(key, json);
	JS_FreeCString(c, key);
	JS_FreeCString(c, json);
	return JS_NewInt32(c, (int32_t)st);
}

/* raw_ask takes the input request document and returns the response's. */
static JSValue raw_ask(JSContext *c, JSValueConst this, int argc, JSValueConst *argv) {
	(void)this;
	size_t n;
	const char *req = JS_ToCStringLen(c, &n, argc > 0 ? argv[0] : JS_UNDEFINED);
	if (!req) return JS_EXCEPTION;
	char *resp = tfa_get(tfa_h_input_request(tfa_put(req, n)), NULL);
	JS_FreeCString(c, req);
	return js_str_or_null(c, resp);
}

/* raw_http takes the HTTP request document and returns the response's. */
static JSValue raw_http(JSContext *c, JSValueConst this, int argc, JSValueConst *argv) {
	(void)this;
	size_t n;
	const char *req = JS_ToCStringLen(c, &n, argc > 0 ? argv[0] : JS_UNDEFINED);
	if (!req) return JS_EXCEPTION;
	char *resp = tfa_get(tfa_h_http(tfa_put(req, n)), NULL);
	JS_FreeCString(c, req);
	return js_str_or_null(c, resp);
}

/* raw_exec takes the exec request document and returns the response's. */
static JSValue raw_exec(JSContext *c, JSValueConst this, int argc, JSValueConst *argv) {
	(void)this;
	size_t n;
	const char *req = JS_ToCStringLen(c, &n, argc > 0 ? argv[0] : JS_UNDEFINED);
	if (!req) return JS_EXCEPTION;
	char *resp = tfa_get(tfa_h_exec(tfa_put(req, n)), NULL);
	JS_FreeCString(c, req);
	return js_str_or_null(c, resp);
}

static JSValue raw_notify(JSContext *c, JSValueConst this, int argc, JSValueConst *argv) {
	(void)this;
	const char *doc = arg(c, argc, argv, 0);
	if (!doc) return JS_EXCEPTION;
	uint32_t st = tfa_notify(doc);
	JS_FreeCString(c, doc);
	return JS_NewInt32(c, (int32_t)st);
}

static JSValue raw_config(JSContext *c, JSValueConst this, int argc, JSValueConst *argv) {
	(void)this;
	const char *key = arg(c, argc, argv, 0);
	if (!key) return JS_EXCEPTION;
	char *v = strncmp(key, "12fa.", 5) ? tfa_config(key) : NULL;
	JS_FreeCString(c, key);
	return js_str_or_null(c, v);
}

/* The JS side: `host`, and the driver that calls the script's run(env)
 * and leaves the outcome in __12fa_outcome. */
static const char prelude[] =
	"(function (raw) {\n"
	"  const fail = (code, message, retryable) => {\n"
	"    const e = new Error(String(message));\n"
	"    e.code = String(code); e.retryable = retryable; e.isStepError = true;\n"
	"    return e;\n"
	"  };\n"
	"  const WAIT = Object.freeze({ waiting: true });\n"
	/* A host function called with the wrong types throws at once, naming
	 * the call and the argument, and the step fails for good (code
	 * js_type_error): a wrong call does not become a question that reads
	 * "[object Object]". */
	"  const kind = (v) => v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : typeof v;\n"
	"  const typeError = (call, what, want, v, hint) => fail('js_type_error',\n"
	"    `${call}: ${what} must be ${want}, not ${kind(v)}` + (hint ? ` (${hint})` : ''), false);\n"
	"  const str = (call, what, v, hint) => { if (typeof v !== 'string' || v === '') throw typeError(call, what, 'a non-empty string', v, hint); return v; };\n"
	"  const text = (call, what, v) => { if (typeof v !== 'string') throw typeError(call, what, 'a string', v); return v; };\n"
	"  const levels = ['trace', 'debug', 'info', 'warn', 'error'];\n"
	"  const json = (call, v) => {\n"
	"    const t = JSON.stringify(v === undefined ? null : v);\n"
	"    if (typeof t !== 'string') throw typeError(call, 'value', 'a JSON value', v);\n"
	"    return t;\n"
	"  };\n"
	"  globalThis.host = Object.freeze({\n"
	"    log: (level, message) => {\n"
	"      if (!levels.includes(level)) throw typeError('host.log(level, message)', 'level', `one of ${levels.join(', ')}`, level, typeof level === 'string' ? `got \"${level}\"` : '');\n"
	"      return raw.log(level, text('host.log(level, message)', 'message', message));\n"
	"    },\n"
	"    ctxGet: (key) => { const t = raw.ctxGet(str('host.ctxGet(key)', 'key', key)); return t === null ? undefined : JSON.parse(t); },\n"
	"    ctxSet: (key, value) => raw.ctxSet(str('host.ctxSet(key, value)', 'key', key), json('host.ctxSet(key, value)', value)),\n"
	"    ask: (key, question, options) => {\n"
	"      const call = 'host.ask(key, question, options)';\n"
	"      const req = { key: str(call, 'key', key), question: str(call, 'question', question,\n"
	"        question && typeof question === 'object' ? 'the options go third, as an array: host.ask(key, question, [\"yes\", \"no\"])' : '') };\n"
	"      if (options !== undefined && options !== null) {\n"
	"        if (!Array.isArray(options) || !options.every((o) => typeof o === 'string'))\n"
	"          throw typeError(call, 'options', 'an array of strings', options);\n"
	"        if (options.length) req.options = options;\n"
	"      }\n"
	"      const r = JSON.parse(raw.ask(JSON.stringify(req)));\n"
	"      return r.answered ? r.answer : null;\n"
	"    },\n"
	"    notify: (doc) => {\n"
	"      if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw typeError('host.notify(doc)', 'doc', 'an object', doc);\n"
	"      str('host.notify(doc)', 'doc.message', doc.message);\n"
	"      return raw.notify(JSON.stringify(doc));\n"
	"    },\n"
	"    http: (req) => {\n"
	"      const call = 'host.http(req)';\n"
	"      if (req === null || typeof req !== 'object' || Array.isArray(req)) throw typeError(call, 'req', 'an object { url, method, headers, body }', req);\n"
	"      str(call, 'req.url', req.url);\n"
	"      const r = JSON.parse(raw.http(JSON.stringify(req)));\n"
	"      if (r.error) throw fail(r.error.code, r.error.message, undefined);\n"
	"      return r;\n"
	"    },\n"
	/* fetch-shaped: headers by name, text() and json(); a request with no
	 * response rejects with the error's code, as host.http throws. */
	"    fetch: (url, init) => {\n"
	"      init = init || {};\n"
	"      const headers = {};\n"
	"      for (const [k, v] of Object.entries(init.headers || {})) headers[k] = Array.isArray(v) ? v.map(String) : [String(v)];\n"
	"      const req = { url: str('host.fetch(url, init)', 'url', url), method: init.method || 'GET', headers };\n"
	"      if (init.body !== undefined && init.body !== null) req.body = String(init.body);\n"
	"      try {\n"
	"        const r = globalThis.host.http(req);\n"
	"        const h = r.headers || {};\n"
	"        const body = r.body !== undefined ? r.body : '';\n"
	"        return Promise.resolve({ ok: r.status >= 200 && r.status < 300, status: r.status, url: r.url,\n"
	"          headers: { get: (n) => { const v = h[String(n).toLowerCase()]; return v ? v.join(', ') : null; } },\n"
	"          text: () => Promise.resolve(body), json: () => Promise.resolve(JSON.parse(body)) });\n"
	"      } catch (e) { return Promise.reject(e); }\n"
	"    },\n"
	"    exec: (command, args, opts) => {\n"
	"      const call = 'host.exec(command, args, opts)';\n"
	"      const req = Object.assign({}, opts || {}, { command: str(call, 'command', command) });\n"
	"      if (args !== undefined && args !== null) {\n"
	"        if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw typeError(call, 'args', 'an array of strings', args);\n"
	"        req.args = args;\n"
	"      }\n"
	"      const r = JSON.parse(raw.exec(JSON.stringify(req)));\n"
	"      if (r.error) throw fail(r.error.code, r.error.message, undefined);\n"
	"      return r;\n"
	"    },\n"
	"    config: (key) => raw.config(str('host.config(key)', 'key', key)),\n"
	"    fail: (code, message) => fail(str('host.fail(code, message)', 'code', code), text('host.fail(code, message)', 'message', message), true),\n"
	"    failPermanent: (code, message) => fail(str('host.failPermanent(code, message)', 'code', code), text('host.failPermanent(code, message)', 'message', message), false),\n"
	"    WAIT,\n"
	"  });\n"
	"  const errorDoc = (e) => {\n"
	"    if (e && e.isStepError) return { code: e.code, message: e.message, retryable: e.retryable };\n"
	"    if (e instanceof InternalError && e.message === 'out of memory')\n"
	"      return { code: 'out_of_memory', message: 'out of memory: the step reached its memory cap', retryable: false };\n"
	"    const syntax = e instanceof SyntaxError;\n"
	"    let message = String(e);\n"
	"    if (e && e.stack) message += '\\n' + e.stack;\n"
	"    return { code: syntax ? 'js_syntax' : 'js_error', message, retryable: !syntax };\n"
	"  };\n"
	"  globalThis.__12fa_error = (e) => { globalThis.__12fa_outcome = { error: errorDoc(e) }; };\n"
	"  globalThis.__12fa_start = (envText, name) => {\n"
	"    const done = (o) => { globalThis.__12fa_outcome = o; };\n"
	"    const fn = globalThis[name];\n"
	"    if (typeof fn !== 'function') {\n"
	"      done({ error: { code: 'no_function', message: `the script defines no function ${name}(env)`, retryable: false } });\n"
	"      return;\n"
	"    }\n"
	"    let r;\n"
	"    try { r = fn(JSON.parse(envText)); } catch (e) { done({ error: errorDoc(e) }); return; }\n"
	"    Promise.resolve(r).then(\n"
	"      (v) => done(v === WAIT ? { wait: true } : { output: JSON.stringify(v === undefined ? null : v) }),\n"
	"      (e) => done({ error: errorDoc(e) }));\n"
	"  };\n"
	"})";

static int start(void) {
	rt = JS_NewRuntime();
	if (!rt) return 1;
	ctx = JS_NewContext(rt);
	if (!ctx) return 1;
	JSValue raw = JS_NewObject(ctx);
	JS_SetPropertyStr(ctx, raw, "log", JS_NewCFunction(ctx, raw_log, "log", 2));
	JS_SetPropertyStr(ctx, raw, "ctxGet", JS_NewCFunction(ctx, raw_ctx_get, "ctxGet", 1));
	JS_SetPropertyStr(ctx, raw, "ctxSet", JS_NewCFunction(ctx, raw_ctx_set, "ctxSet", 2));
	JS_SetPropertyStr(ctx, raw, "ask", JS_NewCFunction(ctx, raw_ask, "ask", 1));
	JS_SetPropertyStr(ctx, raw, "notify", JS_NewCFunction(ctx, raw_notify, "notify", 1));
	JS_SetPropertyStr(ctx, raw, "http", JS_NewCFunction(ctx, raw_http, "http", 1));
	JS_SetPropertyStr(ctx, raw, "exec", JS_NewCFunction(ctx, raw_exec, "exec", 1));
	JS_SetPropertyStr(ctx, raw, "config", JS_NewCFunction(ctx, raw_config, "config", 1));
	JSValue fn = JS_Eval(ctx, prelude, sizeof prelude - 1, "<12fa prelude>", JS_EVAL_TYPE_GLOBAL);
	if (JS_IsException(fn)) return 1;
	JSValue global = JS_GetGlobalObject(ctx);
	JSValue r = JS_Call(ctx, fn, global, 1, &raw);
	int failed = JS_IsException(r);
	JS_FreeValue(ctx, r);
	JS_FreeValue(ctx, fn);
	JS_FreeValue(ctx, raw);
	JS_FreeValue(ctx, global);
	return failed;
}

TFA_EXPORT("12fa_prepare") int32_t prepare(void) {
	if (!ctx && start()) return 1;
	return 0;
}

/* report turns the outcome the driver left into the step's output or
 * error. */
static int32_t report(JSValue global) {
	JSValue o = JS_GetPropertyStr(ctx, global, "__12fa_outcome");
	if (!JS_IsObject(o)) {
		JS_FreeValue(ctx, o);
		return tfa_fail("js_pending", "run(env) returned a promise that never settled", 0);
	}
	int32_t rc = 0;
	JSValue out = JS_GetPropertyStr(ctx, o, "output");
	JSValue err = JS_GetPropertyStr(ctx, o, "error");
	JSValue wait = JS_GetPropertyStr(ctx, o, "wait");
	if (JS_IsString(out)) {
		size_t n;
		const char *s = JS_ToCStringLen(ctx, &n, out);
		tfa_output(s, n);
		JS_FreeCString(ctx, s);
	} else if (JS_ToBool(ctx, wait) > 0) {
		tfa_output("null", 4);
	} else {
		JSValue code = JS_GetPropertyStr(ctx, err, "code"), msg = JS_GetPropertyStr(ctx, err, "message");
		JSValue retry = JS_GetPropertyStr(ctx, err, "retryable");
		const char *c = JS_ToCString(ctx, code), *m = JS_ToCString(ctx, msg);
		/* retryable unset (an HTTP error's): the host decides by the code */
		rc = tfa_fail(c ? c : "js_error", m ? m : "error", JS_IsUndefined(retry) || JS_ToBool(ctx, retry) > 0);
		JS_FreeCString(ctx, c);
		JS_FreeCString(ctx, m);
		JS_FreeValue(ctx, code);
		JS_FreeValue(ctx, msg);
		JS_FreeValue(ctx, retry);
	}
	JS_FreeValue(ctx, out);
	JS_FreeValue(ctx, err);
	JS_FreeValue(ctx, wait);
	JS_FreeValue(ctx, o);
	return rc;
}

TFA_EXPORT("run") int32_t run(void) {
	if (!ctx && start()) return tfa_fail("js_start", "the JavaScript runtime did not start", 0);
	char *src = tfa_config("12fa.script");
	if (!src) return tfa_fail("no_script", "no script given (config key 12fa.script)", 0);
	char *name = tfa_config("12fa.script_name");
	JSValue global = JS_GetGlobalObject(ctx);
	JSValue r = JS_Eval(ctx, src, strlen(src), name ? name : "step.js", JS_EVAL_TYPE_GLOBAL);
	if (JS_IsException(r)) {
		/* The script itself failed (a syntax error, a throw at top level). */
		JSValue e = JS_GetException(ctx);
		JSValue f = JS_GetPropertyStr(ctx, global, "__12fa_error");
		JS_FreeValue(ctx, JS_Call(ctx, f, global, 1, &e));
		JS_FreeValue(ctx, f);
		JS_FreeValue(ctx, e);
	} else {
		size_t n;
		char *env = tfa_input(&n);
		char *fn = tfa_config("12fa.function");
		JSValue args[2] = {JS_NewStringLen(ctx, env, n), JS_NewString(ctx, fn ? fn : "run")};
		free(env);
		free(fn);
		JSValue f = JS_GetPropertyStr(ctx, global, "__12fa_start");
		JSValue s = JS_Call(ctx, f, global, 2, args);
		JS_FreeValue(ctx, s);
		JS_FreeValue(ctx, f);
		JS_FreeValue(ctx, args[0]);
		JS_FreeValue(ctx, args[1]);
		JSContext *c;
		while (JS_ExecutePendingJob(rt, &c) > 0) {
		}
	}
	JS_FreeValue(ctx, r);
	int32_t rc = report(global);
	JS_FreeValue(ctx, global);
	return rc;
}
