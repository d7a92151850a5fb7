//! Explores every rule with the default bounds and prints the reports.
//!
//! Run with `cargo run --release -p pidwatch-model --example explore`, or
//! pass `--json` for the reports as JSON lines.

use pidwatch_model::{explore, Bounds, Rule};

fn main() {
    let json = std::env::args().any(|arg| arg == "--json");
    let bounds = Bounds::default();

    for rule in Rule::ALL {
        let exploration = explore(rule, &bounds);
        if json {
            match serde_json::to_string(&exploration) {
                Ok(line) => println!("{line}"),
                Err(error) => eprintln!("serializing the {rule} exploration failed: {error}"),
            }
        } else {
            println!("{exploration}");
        }
    }
}
