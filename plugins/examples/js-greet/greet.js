// js-greet: the greet example step in JavaScript (see
// plugins/examples/GREET.md for what every language's greet does). 12fa
// runs it in its JS step runner (pdk/js).

function run(env) {
  const input = env.input || {};
  if (input.fail === "permanent") throw host.failPermanent("bad_name", "greet was asked to fail for good");
  if (input.fail === "retry") throw host.fail("flaky", "greet was asked to fail once more");
  const name = input.name;
  if (!name) throw host.failPermanent("no_name", "input.name is missing");

  const tone = host.ask("tone", `How should I greet ${name}?`, ["formal", "casual"]);
  if (tone === null) return host.WAIT;

  host.log("info", `greeting ${name} (${tone})`);
  const count = (host.ctxGet("greetings") || 0) + 1;
  host.ctxSet("greetings", count);
  host.notify({ title: "greet", message: `greeted ${name}`, priority: 3 });

  const greeting = tone === "formal" ? `Good day, ${name}.` : `Hi, ${name}!`;
  const out = { greeting, count, step: env.step, attempt: env.attempt, lang: "js" };
  if (input.url) out.fetched = host.http({ url: input.url }).body;
  if (input.run) out.ran = host.exec(input.run, ["hello", name]).stdout;
  return out;
}
