/* 12fa.h — 12fa's guest kit for C (header only, abi v1).
 *
 * A step is an exported function that returns 0 (output set) or non-zero
 * (error set). Build with clang and wasi-libc:
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -I pdk/c \
 *         -o step.wasm step.c
 *
 * See README.md beside this file for the ABI, the limits and the re-run
 * rule for steps that ask questions. Every function that returns memory
 * returns it from malloc; free it, or let the instance's reset take it.
 */
#ifndef TFA_12FA_H
#define TFA_12FA_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TFA_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
/* TFA_EXPORT(name) makes a function a step the manifest can call. */
#define TFA_EXPORT(name) __attribute__((export_name(name)))

/* Extism's kernel: memory blocks, input, output, error, config. */
TFA_IMPORT("extism:host/env", "input_length") uint64_t tfa_x_input_length(void);
TFA_IMPORT("extism:host/env", "input_load_u8") uint32_t tfa_x_input_load_u8(uint64_t off);
TFA_IMPORT("extism:host/env", "input_load_u64") uint64_t tfa_x_input_load_u64(uint64_t off);
TFA_IMPORT("extism:host/env", "length") uint64_t tfa_x_length(uint64_t off);
TFA_IMPORT("extism:host/env", "alloc") uint64_t tfa_x_alloc(uint64_t n);
TFA_IMPORT("extism:host/env", "free") void tfa_x_free(uint64_t off);
TFA_IMPORT("extism:host/env", "load_u8") uint32_t tfa_x_load_u8(uint64_t off);
TFA_IMPORT("extism:host/env", "load_u64") uint64_t tfa_x_load_u64(uint64_t off);
TFA_IMPORT("extism:host/env", "store_u8") void tfa_x_store_u8(uint64_t off, uint32_t v);
TFA_IMPORT("extism:host/env", "store_u64") void tfa_x_store_u64(uint64_t off, uint64_t v);
TFA_IMPORT("extism:host/env", "output_set") void tfa_x_output_set(uint64_t off, uint64_t n);
TFA_IMPORT("extism:host/env", "error_set") void tfa_x_error_set(uint64_t off);
TFA_IMPORT("extism:host/env", "config_get") uint64_t tfa_x_config_get(uint64_t key);

/* 12fa's host functions, abi v1. */
TFA_IMPORT("12fa:v1", "ctx_get") uint64_t tfa_h_ctx_get(uint64_t key);
TFA_IMPORT("12fa:v1", "ctx_set") uint32_t tfa_h_ctx_set(uint64_t key, uint64_t value);
TFA_IMPORT("12fa:v1", "log") uint32_t tfa_h_log(int32_t level, uint64_t msg);
TFA_IMPORT("12fa:v1", "input_request") uint64_t tfa_h_input_request(uint64_t req);
TFA_IMPORT("12fa:v1", "notify") uint32_t tfa_h_notify(uint64_t doc);
TFA_IMPORT("12fa:v1", "http") uint64_t tfa_h_http(uint64_t req);
TFA_IMPORT("12fa:v1", "exec") uint64_t tfa_h_exec(uint64_t req);

/* Log levels and host statuses (abi/abi.go). */
enum { TFA_TRACE, TFA_DEBUG, TFA_INFO, TFA_WARN, TFA_ERROR };
enum { TFA_OK = 0, TFA_LIMITED = 1, TFA_DENIED = 2, TFA_INTERNAL = 3 };

/* ---- moving bytes across the kernel boundary ---- */

static inline uint64_t tfa_put(const char *p, size_t n) {
	uint64_t off = tfa_x_alloc(n);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		tfa_x_store_u64(off + i, w);
	}
	for (; i < n; i++) tfa_x_store_u8(off + i, (uint8_t)p[i]);
	return off;
}

static inline uint64_t tfa_put_str(const char *s) { return tfa_put(s, strlen(s)); }

/* tfa_get copies the block at off into a NUL-terminated malloc'd buffer. */
static inline char *tfa_get(uint64_t off, size_t *len) {
	size_t n = (size_t)tfa_x_length(off), i = 0;
	char *b = malloc(n + 1);
	for (; i + 8 <= n; i += 8) {
		uint64_t w = tfa_x_load_u64(off + i);
		memcpy(b + i, &w, 8);
	}
	for (; i < n; i++) b[i] = (char)tfa_x_load_u8(off + i);
	b[n] = 0;
	if (len) *len = n;
	return b;
}

/* tfa_input returns the call's input (the envelope), NUL-terminated. */
static inline char *tfa_input(size_t *len) {
	size_t n = (size_t)tfa_x_input_length(), i = 0;
	char *b = malloc(n + 1);
	for (; i + 8 <= n; i += 8) {
		uint64_t w = tfa_x_input_load_u64(i);
		memcpy(b + i, &w, 8);
	}
	for (; i < n; i++) b[i] = (char)tfa_x_input_load_u8(i);
	b[n] = 0;
	if (len) *len = n;
	return b;
}

/* tfa_output sets the step's output (JSON, or text kept as a JSON string). */
static inline void tfa_output(const char *p, size_t n) { tfa_x_output_set(tfa_put(p, n), n); }

/* tfa_config returns the manifest's config value for key, or NULL. */
static inline char *tfa_config(const char *key) {
	uint64_t off = tfa_x_config_get(tfa_put_str(key));
	return off ? tfa_get(off, NULL) : NULL;
}

/* ---- a growable string, for building JSON ---- */

typedef struct {
	char *p;
	size_t n, cap;
} tfa_buf;

static inline void tfa_buf_add(tfa_buf *b, const char *p, size_t n) {
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
}

static inline void tfa_buf_str(tfa_buf *b, const char *s) { tfa_buf_add(b, s, strlen(s)); }

static inline void tfa_buf_printf(tfa_buf *b, const char *fmt, ...) {
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0) return;
	if ((size_t)n < sizeof tmp) {
		tfa_buf_add(b, tmp, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	tfa_buf_add(b, big, (size_t)n);
	free(big);
}

/* tfa_buf_json appends s as a JSON string, quoted and escaped. */
static inline void tfa_buf_json(tfa_buf *b, const char *s) {
	tfa_buf_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			tfa_buf_add(b, e, 2);
		} else if (c < 0x20) {
			tfa_buf_printf(b, "\\u%04x", c);
		} else {
			tfa_buf_add(b, (const char *)&c, 1);
		}
	}
	tfa_buf_add(b, "\"", 1);
}

/* ---- reading JSON ---- */

static inline const char *tfa_json_ws(const char *p, const char *end) {
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
	return p;
}

/* tfa_json_skip returns the end of the JSON value at p, or NULL. */
static inline const char *tfa_json_skip(const char *p, const char *end) {
	p = tfa_json_ws(p, end);
	if (p >= end) return NULL;
	if (*p == '"') {
		for (p++; p < end; p++) {
			if (*p == '\\') p++;
			else if (*p == '"') return p + 1;
		}
		return NULL;
	}
	if (*p == '{' || *p == '[') {
		int depth = 0;
		for (; p < end; p++) {
			if (*p == '"') {
				p = tfa_json_skip(p, end);
				if (!p) return NULL;
				p--;
			} else if (*p == '{' || *p == '[') {
				depth++;
			} else if (*p == '}' || *p == ']') {
				if (--depth == 0) return p + 1;
			}
		}
		return NULL;
	}
	while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') p++;
	return p;
}

/* tfa_json_field finds key in the JSON object [p, end) and returns its raw
 * value (and its length in *n), or NULL. */
static inline const char *tfa_json_field(const char *p, const char *end, const char *key, size_t *n) {
	size_t klen = strlen(key);
	p = tfa_json_ws(p, end);
	if (p >= end || *p != '{') return NULL;
	p++;
	for (;;) {
		p = tfa_json_ws(p, end);
		if (p >= end || *p != '"') return NULL;
		const char *k = p + 1, *kend = tfa_json_skip(p, end);
		if (!kend) return NULL;
		p = tfa_json_ws(kend, end);
		if (p >= end || *p != ':') return NULL;
		const char *v = tfa_json_ws(p + 1, end), *vend = tfa_json_skip(v, end);
		if (!vend) return NULL;
		if ((size_t)(kend - 1 - k) == klen && memcmp(k, key, klen) == 0) {
			*n = (size_t)(vend - v);
			return v;
		}
		p = tfa_json_ws(vend, end);
		if (p >= end || *p != ',') return NULL;
		p++;
	}
}

static inline void tfa_utf8(tfa_buf *b, uint32_t c) {
	char u[4];
	size_t n;
	if (c < 0x80) u[0] = (char)c, n = 1;
	else if (c < 0x800) u[0] = (char)(0xc0 | c >> 6), u[1] = (char)(0x80 | (c & 0x3f)), n = 2;
	else if (c < 0x10000) u[0] = (char)(0xe0 | c >> 12), u[1] = (char)(0x80 | ((c >> 6) & 0x3f)), u[2] = (char)(0x80 | (c & 0x3f)), n = 3;
	else u[0] = (char)(0xf0 | c >> 18), u[1] = (char)(0x80 | ((c >> 12) & 0x3f)), u[2] = (char)(0x80 | ((c >> 6) & 0x3f)), u[3] = (char)(0x80 | (c & 0x3f)), n = 4;
	tfa_buf_add(b, u, n);
}

static inline uint32_t tfa_hex4(const char *p) {
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v = v * 16 + (uint32_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
	}
	return v;
}

/* tfa_json_string decodes the JSON string value [p, p+n) into a malloc'd
 * NUL-terminated string, or returns NULL if it is not a string. */
static inline char *tfa_json_string(const char *p, size_t n) {
	if (!p || n < 2 || p[0] != '"' || p[n - 1] != '"') return NULL;
	tfa_buf b = {0};
	tfa_buf_add(&b, "", 0);
	for (size_t i = 1; i + 1 < n; i++) {
		if (p[i] != '\\') {
			tfa_buf_add(&b, p + i, 1);
			continue;
		}
		char e = p[++i];
		switch (e) {
		case 'n': tfa_buf_add(&b, "\n", 1); break;
		case 't': tfa_buf_add(&b, "\t", 1); break;
		case 'r': tfa_buf_add(&b, "\r", 1); break;
		case 'b': tfa_buf_add(&b, "\b", 1); break;
		case 'f': tfa_buf_add(&b, "\f", 1); break;
		case 'u': {
			if (i + 4 >= n) break;
			uint32_t c = tfa_hex4(p + i + 1);
			i += 4;
			if (c >= 0xd800 && c < 0xdc00 && i + 6 < n && p[i + 1] == '\\' && p[i + 2] == 'u') {
				uint32_t lo = tfa_hex4(p + i + 3);
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
			tfa_utf8(&b, c);
			break;
		}
		default: tfa_buf_add(&b, &e, 1);
		}
	}
	return b.p;
}

/* tfa_json_get_string returns the string field key of the JSON object
 * json (NUL-terminated), malloc'd, or NULL. */
static inline char *tfa_json_get_string(const char *json, const char *key) {
	size_t n;
	const char *v = tfa_json_field(json, json + strlen(json), key, &n);
	return v ? tfa_json_string(v, n) : NULL;
}

/* ---- the step's side of abi v1 ---- */

/* tfa_fail sets the step's error document and returns 1, the value to
 * return from the export. A non-retryable error is never retried. */
static inline int32_t tfa_fail(const char *code, const char *message, int retryable) {
	tfa_buf b = {0};
	tfa_buf_str(&b, "{\"code\":");
	tfa_buf_json(&b, code);
	tfa_buf_str(&b, ",\"message\":");
	tfa_buf_json(&b, message);
	if (!retryable) tfa_buf_str(&b, ",\"retryable\":false");
	tfa_buf_str(&b, "}");
	tfa_x_error_set(tfa_put(b.p, b.n));
	free(b.p);
	return 1;
}

/* tfa_log writes a line to the step's log; TFA_LIMITED once over the
 * per-attempt limits. */
static inline uint32_t tfa_log(int level, const char *msg) { return tfa_h_log(level, tfa_put_str(msg)); }

/* tfa_ctx_get returns the JSON value under key in the workflow context,
 * or NULL when there is none. */
static inline char *tfa_ctx_get(const char *key) {
	uint64_t off = tfa_h_ctx_get(tfa_put_str(key));
	return off ? tfa_get(off, NULL) : NULL;
}

/* tfa_ctx_set sets key to a JSON value ("null" deletes it); the write is
 * durable with the step's result. */
static inline uint32_t tfa_ctx_set(const char *key, const char *json) {
	return tfa_h_ctx_set(tfa_put_str(key), tfa_put_str(json));
}

/* tfa_ask asks a person a question (options may be NULL). It returns 1
 * and the answer in *answer (malloc'd) once answered, 0 while unanswered.
 * Ask every question first, then return TFA_WAIT if any is unanswered. */
static inline int tfa_ask(const char *key, const char *question, const char *const *options, size_t n_options,
                          char **answer) {
	tfa_buf b = {0};
	tfa_buf_str(&b, "{\"key\":");
	tfa_buf_json(&b, key);
	tfa_buf_str(&b, ",\"question\":");
	tfa_buf_json(&b, question);
	if (n_options) {
		tfa_buf_str(&b, ",\"options\":[");
		for (size_t i = 0; i < n_options; i++) {
			if (i) tfa_buf_str(&b, ",");
			tfa_buf_json(&b, options[i]);
		}
		tfa_buf_str(&b, "]");
	}
	tfa_buf_str(&b, "}");
	char *resp = tfa_get(tfa_h_input_request(tfa_put(b.p, b.n)), NULL);
	free(b.p);
	size_t n;
	const char *v = tfa_json_field(resp, resp + strlen(resp), "answered", &n);
	int answered = v && n == 4 && memcmp(v, "true", 4) == 0;
	if (answered && answer) *answer = tfa_json_get_string(resp, "answer");
	free(resp);
	return answered;
}

/* TFA_WAIT is what a step returns after asking questions that have no
 * answer yet: the run waits, and the step runs again once they are
 * answered. */
#define TFA_WAIT (tfa_output("null", 4), 0)

/* tfa_notify sends a notification; doc is its JSON document
 * ({"title","message","priority","tags","click","actions"}). */
static inline uint32_t tfa_notify(const char *doc) { return tfa_h_notify(tfa_put_str(doc)); }

/* tfa_http sends an HTTP request under the step's allow.hosts grant. req
 * is its JSON document ({"method","url","headers":{"name":["value"]},
 * "body"}); the result (the caller frees it) is the response document,
 * {"status","headers","body" or "body_base64","url"}, or
 * {"error":{"code","message"}} when there is none. */
static inline char *tfa_http(const char *req) { return tfa_get(tfa_h_http(tfa_put_str(req)), NULL); }

/* tfa_exec runs one of the step's allow.commands. req is its JSON document
 * ({"command","args":[...],"cwd","env":{},"stdin","timeout"}); the result
 * (the caller frees it) is {"exit_code","stdout","stderr","truncated",
 * "duration_ms"}, or has "error":{"code","message"} when it could not run
 * (check it with tfa_http_failed, which reads any host call's result). */
static inline char *tfa_exec(const char *req) { return tfa_get(tfa_h_exec(tfa_put_str(req)), NULL); }

/* tfa_http_failed fails the step with a response's error, if it has one,
 * and returns 1 (return it from the export); 0 when resp is a response.
 * The code (http_timeout, http_denied …) tells the host whether to retry. */
static inline int32_t tfa_http_failed(const char *resp) {
	size_t n;
	const char *e = tfa_json_field(resp, resp + strlen(resp), "error", &n);
	if (!e || n == 0 || e[0] != '{') return 0;
	char *code = tfa_json_get_string(e, "code"), *message = tfa_json_get_string(e, "message");
	tfa_buf b = {0};
	tfa_buf_str(&b, "{\"code\":");
	tfa_buf_json(&b, code ? code : "http_error");
	tfa_buf_str(&b, ",\"message\":");
	tfa_buf_json(&b, message ? message : "");
	tfa_buf_str(&b, "}");
	tfa_x_error_set(tfa_put(b.p, b.n));
	free(b.p);
	free(code);
	free(message);
	return 1;
}

#endif
