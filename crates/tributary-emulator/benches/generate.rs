//! Times the generation of the default organization (25 users × 400 messages) and
//! prints its size. Run with `cargo bench -p tributary-emulator --bench generate`.

use std::time::{Duration, Instant};

use tributary_emulator::org::{OrgConfig, blueprint, generate, realize};

fn main() {
    let config = OrgConfig::default();
    // One warm-up run, then the median of a few.
    let generated = generate(&config);
    let mut totals = Vec::new();
    let mut plans = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let planned = blueprint(&config);
        let planned_at = start.elapsed();
        let again = realize(&config, &planned);
        totals.push(start.elapsed());
        plans.push(planned_at);
        assert_eq!(again.truth.stats, generated.truth.stats);
    }
    let stats = &generated.truth.stats;
    let bytes: usize = generated
        .org
        .mailboxes
        .values()
        .flat_map(|m| m.messages.values())
        .map(|m| m.raw.len())
        .sum();
    println!(
        "generate default org: median {:?} (plan {:?}), {} users, {} RFC messages, {} stored copies ({:.1} MB raw), {} activities ({} hash-keyed), {} excluded automated, {} excluded internal, {} contacts, {} companies, {} relationships",
        median(&mut totals),
        median(&mut plans),
        stats.users,
        stats.rfc_messages,
        stats.stored_messages,
        bytes as f64 / 1e6,
        stats.activities,
        stats.hash_keyed_activities,
        stats.excluded_automated,
        stats.excluded_internal,
        stats.contacts,
        stats.companies,
        stats.relationships,
    );
    let json = generated.truth.to_json_pretty();
    println!("ground-truth.json: {:.1} MB", json.len() as f64 / 1e6);
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
