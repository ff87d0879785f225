//! Help pages: what the numbers the console shows mean. The relationship score's
//! legend appears beside every score; its page explains the formula as
//! `tributary_core::relationship` computes it (see docs/capture-model.md).

use super::layout::{self, Section};
use super::session::Viewer;
use axum::response::Html;
use maud::{Markup, html};
use tributary_core::relationship::HALF_LIFE_MS;

/// Where the score is explained.
pub const SCORE_HELP: &str = "/help/relationship-score";

/// The days in which a score halves without contact (90).
fn half_life_days() -> f64 {
    HALF_LIFE_MS / 86_400_000.0
}

/// The one line shown beside scores, with a link to the page explaining them.
pub fn score_legend() -> Markup {
    html! {
        span.legend {
            (legend_text()) " "
            a href=(SCORE_HELP) { "How the score works" }
        }
    }
}

fn legend_text() -> String {
    format!(
        "Score: higher = more recent and more frequent two-way contact; halves every {} days without contact.",
        half_life_days()
    )
}

/// `/help/relationship-score`: the formula, its weights and why.
pub async fn relationship_score(viewer: Viewer) -> Html<String> {
    let days = half_life_days();
    let body = html! {
        section.card.prose {
            p.legend { (legend_text()) }
            h2 { "What it measures" }
            p {
                "A relationship is one member and one outside contact. Every captured message "
                "both take part in adds to its score; older messages count less. The score is "
                "a sum, so it grows with how often they are in touch and with how recently."
            }
            h2 { "The formula" }
            pre { "score = Σ over messages   w × 2^(−age / " (days) " days)" }
            ul {
                li { strong { "w = 1.0" } " when the member wrote to the contact (the strongest signal)," }
                li { strong { "w = 0.5" } " when the contact wrote to the member," }
                li { strong { "w = 0.1" } " when both were only on the same message (for example both on Cc)." }
                li { "A reply (the message answers another) counts " strong { "1.5×" } ": a conversation, not a one-off." }
                li { "A message to many counts less for each: " strong { "÷ √(number of recipients)" } "." }
                li { "Being on Cc or Bcc rather than To counts " strong { "half" } "." }
            }
            h2 { "Recency" }
            p {
                "A score halves every " (days) " days without contact: a relationship last "
                "touched a year ago is worth about 1/16 of one touched today, without being "
                "forgotten. Scores are shown as of the last contact point."
            }
            h2 { "Where it is used" }
            p {
                "\"Who knows them best\" ranks members by the sum of their scores with a contact, "
                "or with all of a company's contacts; a member's page lists their strongest "
                "relationships first. Each list shows the score it is ordered by."
            }
        }
    };
    layout::page(&viewer, Section::Companies, "Relationship score", &[], body)
}
