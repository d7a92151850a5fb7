//! `pidwatch model`: exhaustive exploration of the notification rules.

use pidwatch_model::{explore, Bounds, Rule};

use super::args::ModelArgs;
use super::{Code, Failure};

pub fn run(args: ModelArgs) -> Result<Code, Failure> {
    let bounds = Bounds {
        max_tasks: args.max_tasks,
        max_pidfds: args.max_pidfds,
        max_steps: args.max_steps,
    };
    let rules: Vec<Rule> = match args.rule {
        Some(rule) => vec![rule],
        None => Rule::ALL.to_vec(),
    };

    let explorations: Vec<_> = rules.iter().map(|rule| explore(*rule, &bounds)).collect();
    if args.json {
        let text = serde_json::to_string_pretty(&explorations).expect("exploration serializes");
        println!("{text}");
    } else {
        for (index, exploration) in explorations.iter().enumerate() {
            if index > 0 {
                println!();
            }
            print!("{exploration}");
        }
    }

    // The fixed rule is the semantics pidwatch promises, so a violation
    // there is a failure; the other rules are expected to violate some.
    let fixed_violated = explorations
        .iter()
        .any(|exploration| exploration.rule == Rule::Fixed && exploration.has_violations());
    Ok(if fixed_violated {
        Code::Failure
    } else {
        Code::Success
    })
}
