// as-greet: the greet example step in AssemblyScript (see
// plugins/examples/GREET.md for what every language's greet does).

import * as tfa from "../../../pdk/as/index";

export function run(): i32 {
  const env = tfa.envelope();
  const input = env.get("input");
  const fail = input.get("fail").s;
  if (fail == "permanent") return tfa.fail("bad_name", "greet was asked to fail for good", false);
  if (fail == "retry") return tfa.fail("flaky", "greet was asked to fail once more");
  const name = input.get("name").s;
  if (name == "") return tfa.fail("no_name", "input.name is missing", false);

  const tone = tfa.ask("tone", "How should I greet " + name + "?", ["formal", "casual"]);
  if (tone === null) return tfa.waiting();

  tfa.log(tfa.INFO, "greeting " + name + " (" + tone + ")");
  const prev = tfa.ctxGet("greetings");
  const count = (prev === null ? 0 : <i64>prev.n) + 1;
  tfa.ctxSet("greetings", count.toString());
  tfa.notify("{\"title\":\"greet\",\"message\":" + tfa.quote("greeted " + name) + ",\"priority\":3}");

  const greeting = tone == "formal" ? "Good day, " + name + "." : "Hi, " + name + "!";
  const out = tfa.Value.object()
    .set("greeting", tfa.Value.string(greeting))
    .set("count", tfa.Value.number(<f64>count))
    .set("step", env.get("step"))
    .set("attempt", env.get("attempt"))
    .set("lang", tfa.Value.string("as"));
  const url = input.get("url").s;
  if (url != "") {
    const resp = tfa.http("{\"url\":" + tfa.quote(url) + "}");
    if (tfa.httpFailed(resp)) return 1;
    out.set("fetched", resp.get("body"));
  }
  const run = input.get("run").s;
  if (run != "") {
    const resp = tfa.exec("{\"command\":" + tfa.quote(run) + ",\"args\":[\"hello\"," + tfa.quote(name) + "]}");
    if (tfa.httpFailed(resp)) return 1;
    out.set("ran", resp.get("stdout"));
  }
  return tfa.output(out.toString());
}
