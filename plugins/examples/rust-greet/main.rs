//! rust-greet: the greet example step in Rust (see plugins/examples/GREET.md
//! for what every language's greet does).

use twelvefa as tfa;
use twelvefa::{obj, Value};

#[no_mangle]
pub extern "C" fn run() -> i32 {
    tfa::run(|env| {
        let input = env.get("input");
        match input.get("fail").as_str() {
            Some("permanent") => return Err(tfa::fail_permanent("bad_name", "greet was asked to fail for good")),
            Some("retry") => return Err(tfa::fail("flaky", "greet was asked to fail once more")),
            _ => {}
        }
        let name = match input.get("name").as_str() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return Err(tfa::fail_permanent("no_name", "input.name is missing")),
        };
        let tone = match tfa::ask("tone", &format!("How should I greet {}?", name), &["formal", "casual"]) {
            Some(t) => t,
            None => return Err(tfa::Error::Waiting),
        };
        tfa::log(tfa::Level::Info, &format!("greeting {} ({})", name, tone));
        let count = tfa::ctx_get("greetings").and_then(|v| v.as_f64()).unwrap_or(0.0) as i64 + 1;
        tfa::ctx_set("greetings", &Value::from(count));
        tfa::notify(&obj(vec![
            ("title", Value::from("greet")),
            ("message", Value::from(format!("greeted {}", name))),
            ("priority", Value::from(3i64)),
        ]));
        let greeting = if tone == "formal" { format!("Good day, {}.", name) } else { format!("Hi, {}!", name) };
        let mut out = vec![
            ("greeting", Value::from(greeting)),
            ("count", Value::from(count)),
            ("step", env.get("step").clone()),
            ("attempt", env.get("attempt").clone()),
            ("lang", Value::from("rust")),
        ];
        if let Some(url) = input.get("url").as_str() {
            let resp = tfa::http(&obj(vec![("url", Value::from(url))]))?;
            out.push(("fetched", resp.get("body").clone()));
        }
        if let Some(cmd) = input.get("run").as_str() {
            let args = Value::Array(vec![Value::from("hello"), Value::from(name.as_str())]);
            let resp = tfa::exec(&obj(vec![("command", Value::from(cmd)), ("args", args)]))?;
            out.push(("ran", resp.get("stdout").clone()));
        }
        Ok(obj(out))
    })
}
