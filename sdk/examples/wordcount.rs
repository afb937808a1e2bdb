//! Word count as a job phase: as a map phase it prints `word<TAB>count` for
//! its input object; as a reducer it sums such lines from all its inputs.
//! Build: `cargo build -p sdk --example wordcount --target wasm32-wasip1`.

use std::collections::BTreeMap;
use std::io::Write;

fn main() -> std::io::Result<()> {
    let task = sdk::Task::from_env();
    let reduce = matches!(task.kind, sdk::TaskKind::Reduce { .. });
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for line in sdk::lines() {
        let line = line?;
        if reduce {
            // Reducer input is this program's map output: word TAB count.
            if let Some((word, n)) = line.rsplit_once('\t')
                && let Ok(n) = n.trim().parse::<u64>()
            {
                *counts.entry(word.to_owned()).or_default() += n;
            }
        } else {
            for word in line.split_whitespace() {
                *counts.entry(word.to_lowercase()).or_default() += 1;
            }
        }
    }
    let mut out = sdk::Output::stdout();
    for (word, n) in &counts {
        out.emit_kv(word, n)?;
    }
    out.flush()
}
