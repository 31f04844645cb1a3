/* c-greet: the greet example step in C (see plugins/examples/GREET.md for
 * what every language's greet does). */
#include "12fa.h"

TFA_EXPORT("run") int32_t run(void) {
	size_t n;
	char *env = tfa_input(&n);
	const char *end = env + n;
	size_t in_n = 0, att_n = 0;
	const char *in = tfa_json_field(env, end, "input", &in_n);
	const char *attempt = tfa_json_field(env, end, "attempt", &att_n);
	char *step = tfa_json_get_string(env, "step");
	char *name = NULL, *fail = NULL, *url = NULL, *cmd = NULL;
	if (in && in_n && in[0] == '{') {
		size_t fn;
		const char *v = tfa_json_field(in, in + in_n, "name", &fn);
		name = v ? tfa_json_string(v, fn) : NULL;
		v = tfa_json_field(in, in + in_n, "url", &fn);
		url = v ? tfa_json_string(v, fn) : NULL;
		v = tfa_json_field(in, in + in_n, "run", &fn);
		cmd = v ? tfa_json_string(v, fn) : NULL;
		v = tfa_json_field(in, in + in_n, "fail", &fn);
		fail = v ? tfa_json_string(v, fn) : NULL;
	}
	if (fail && strcmp(fail, "permanent") == 0) return tfa_fail("bad_name", "greet was asked to fail for good", 0);
	if (fail && strcmp(fail, "retry") == 0) return tfa_fail("flaky", "greet was asked to fail once more", 1);
	if (!name || !*name) return tfa_fail("no_name", "input.name is missing", 0);

	tfa_buf q = {0};
	tfa_buf_printf(&q, "How should I greet %s?", name);
	const char *tones[] = {"formal", "casual"};
	char *tone = NULL;
	if (!tfa_ask("tone", q.p, tones, 2, &tone)) return TFA_WAIT;

	tfa_buf line = {0};
	tfa_buf_printf(&line, "greeting %s (%s)", name, tone);
	tfa_log(TFA_INFO, line.p);

	char *prev = tfa_ctx_get("greetings");
	long count = (prev ? strtol(prev, NULL, 10) : 0) + 1;
	char num[32];
	snprintf(num, sizeof num, "%ld", count);
	tfa_ctx_set("greetings", num);

	tfa_buf note = {0};
	tfa_buf_str(&note, "{\"title\":\"greet\",\"message\":");
	tfa_buf msg = {0};
	tfa_buf_printf(&msg, "greeted %s", name);
	tfa_buf_json(&note, msg.p);
	tfa_buf_str(&note, ",\"priority\":3}");
	tfa_notify(note.p);

	char *fetched = NULL;
	if (url && *url) {
		tfa_buf req = {0};
		tfa_buf_str(&req, "{\"url\":");
		tfa_buf_json(&req, url);
		tfa_buf_str(&req, "}");
		char *resp = tfa_http(req.p);
		if (tfa_http_failed(resp)) return 1;
		fetched = tfa_json_get_string(resp, "body");
	}

	char *ran = NULL;
	if (cmd && *cmd) {
		tfa_buf req = {0};
		tfa_buf_str(&req, "{\"command\":");
		tfa_buf_json(&req, cmd);
		tfa_buf_str(&req, ",\"args\":[\"hello\",");
		tfa_buf_json(&req, name);
		tfa_buf_str(&req, "]}");
		char *resp = tfa_exec(req.p);
		if (tfa_http_failed(resp)) return 1;
		ran = tfa_json_get_string(resp, "stdout");
	}

	tfa_buf greeting = {0};
	if (strcmp(tone, "formal") == 0) tfa_buf_printf(&greeting, "Good day, %s.", name);
	else tfa_buf_printf(&greeting, "Hi, %s!", name);
	tfa_buf out = {0};
	tfa_buf_str(&out, "{\"greeting\":");
	tfa_buf_json(&out, greeting.p);
	tfa_buf_printf(&out, ",\"count\":%ld,\"step\":", count);
	tfa_buf_json(&out, step ? step : "");
	tfa_buf_str(&out, ",\"attempt\":");
	tfa_buf_add(&out, attempt ? attempt : "0", attempt ? att_n : 1);
	tfa_buf_str(&out, ",\"lang\":\"c\"");
	if (fetched) {
		tfa_buf_str(&out, ",\"fetched\":");
		tfa_buf_json(&out, fetched);
	}
	if (ran) {
		tfa_buf_str(&out, ",\"ran\":");
		tfa_buf_json(&out, ran);
	}
	tfa_buf_str(&out, "}");
	tfa_output(out.p, out.n);
	return 0;
}
