//! Deterministic demo answers: a few sentences per agent, echoing the question, chosen by a
//! hash of (agent, question) so a test can assert the exact final text. Also splits an answer
//! into the token texts that `generation_tokens` events carry (their concatenation is the answer).

use super::agents::{AgentDef, Persona};

/// Longest part of the question echoed back, in characters.
const ECHO_MAX_CHARS: usize = 120;

fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn pick<'a>(pool: &[&'a str], h: u64, salt: u64) -> &'a str {
    let i = (h.rotate_left((salt * 13) as u32) % pool.len() as u64) as usize;
    pool[i]
}

/// The question as echoed: one line, trimmed, at most `ECHO_MAX_CHARS` characters.
fn echo(question: &str) -> String {
    let one_line = question.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(ECHO_MAX_CHARS).collect();
    if one_line.chars().count() > ECHO_MAX_CHARS {
        out.push_str("...");
    }
    out
}

/// The full demo answer of `agent` to `question`; `attachments` are fragment titles to mention.
pub fn answer(agent: &AgentDef, question: &str, attachments: &[String]) -> String {
    let h = fnv1a(&[agent.s_id, question]);
    let q = echo(question);
    let mut s = match agent.persona {
        Persona::Dust => format!(
            "You asked: \"{q}\". {} {} {}",
            pick(
                &[
                    "I searched the workspace and found three documents that bear on this.",
                    "I looked through the company wiki and the last quarter's notes first.",
                    "I checked the shared drive and the recent team threads for context.",
                ],
                h,
                1
            ),
            pick(
                &[
                    "The short version: the current process works, but the hand-off between teams is where most delays come from.",
                    "In short, the figures are on track, with one outlier that deserves a closer look before the next review.",
                    "The main point is that the decision was already taken in March; what remains open is the timeline.",
                ],
                h,
                2
            ),
            pick(
                &[
                    "If you want, I can draft a one-page summary with links to the sources.",
                    "Tell me which part matters most and I will dig deeper there.",
                    "I can also list the owners of each open item if that helps.",
                ],
                h,
                3
            ),
        ),
        Persona::HealthCoach => format!(
            "Thanks for asking about \"{q}\". {} {} {} This is general guidance, not a diagnosis; check with your doctor before changing treatment.",
            pick(
                &[
                    "Looking at the pattern rather than single readings is the right instinct.",
                    "Small, steady changes tend to beat big ones that do not last.",
                    "Your question touches sleep, food and movement, which all pull on each other.",
                ],
                h,
                1
            ),
            pick(
                &[
                    "A useful first step is to log the same measurement at the same time each morning for two weeks.",
                    "Try a ten-minute walk after your largest meal; it often flattens the glucose curve.",
                    "Aim for a fixed bedtime this week and see whether your resting heart rate follows.",
                ],
                h,
                2
            ),
            pick(
                &[
                    "We can review the numbers together once you have a few more days of data.",
                    "Upload your latest export and I will point out any trend worth discussing.",
                    "If anything feels off, such as dizziness or chest pain, seek care promptly.",
                ],
                h,
                3
            ),
        ),
        Persona::Writer | Persona::Legacy => format!(
            "Here is a draft for \"{q}\".\n\n{} {} {}",
            pick(
                &[
                    "We are pleased to share a short update with the whole team.",
                    "A quick note to bring everyone up to speed.",
                    "Thank you all for the hard work over the past weeks.",
                ],
                h,
                1
            ),
            pick(
                &[
                    "The project reached its first milestone on time, and the feedback so far has been encouraging.",
                    "We have simplified the process so that requests are answered within a day.",
                    "The new schedule starts next Monday and replaces the old rota.",
                ],
                h,
                2
            ),
            pick(
                &[
                    "Questions are welcome in the usual channel.",
                    "More details will follow in Friday's newsletter.",
                    "Please reply if anything here is unclear.",
                ],
                h,
                3
            ),
        ),
        Persona::Slow => format!(
            "Let me think about \"{q}\" carefully. {} {}",
            pick(
                &[
                    "There are two sides to this, and both deserve a fair hearing.",
                    "The answer depends mostly on how much time you can give it.",
                ],
                h,
                1
            ),
            pick(
                &[
                    "On balance I would start small and revisit the question in a month.",
                    "My advice is to write down the options and sleep on it.",
                ],
                h,
                2
            ),
        ),
        Persona::Broken => format!(
            "I am starting to look into \"{q}\" but something is going wrong on my side."
        ),
    };
    if !attachments.is_empty() {
        s.push_str(&format!(
            " I also read the attached {}: {}.",
            if attachments.len() == 1 {
                "file"
            } else {
                "files"
            },
            attachments.join(", ")
        ));
    }
    s
}

/// Reasoning text of agents that think before answering.
pub fn chain_of_thought(agent: &AgentDef, question: &str) -> Option<String> {
    (agent.persona == Persona::HealthCoach).then(|| {
        format!(
            "The user asks about \"{}\". Keep it safe, concrete and short.",
            echo(question)
        )
    })
}

/// Splits `text` into token texts whose concatenation is exactly `text` (a word plus the
/// whitespace after it). With `count`, the word sequence is cut or cycled to `count` tokens.
pub fn tokens(text: &str, count: Option<u32>) -> Vec<String> {
    let mut natural: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            natural.push(std::mem::take(&mut cur));
            in_space = false;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        natural.push(cur);
    }
    let Some(n) = count else { return natural };
    if natural.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<String> = (0..n as usize)
        .map(|i| {
            let t = &natural[i % natural.len()];
            // Cycled words need a separator even where the original ended the text.
            if t.ends_with(char::is_whitespace) {
                t.clone()
            } else {
                format!("{t} ")
            }
        })
        .collect();
    if let Some(last) = out.last_mut() {
        let trimmed = last.trim_end().to_string();
        *last = trimmed;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::agents::AGENTS;

    #[test]
    fn answers_are_deterministic_echo_the_question_and_differ_by_agent() {
        let q = "How did the Q3 launch go?";
        let a = answer(&AGENTS[0], q, &[]);
        assert_eq!(a, answer(&AGENTS[0], q, &[]));
        assert!(a.contains(q));
        assert_ne!(a, answer(&AGENTS[2], q, &[]));
    }

    #[test]
    fn tokens_join_back_to_the_text() {
        let text = "Here is a draft.\n\nWe are  pleased.";
        let toks = tokens(text, None);
        assert_eq!(toks.concat(), text);
        assert_eq!(toks[0], "Here ");
        let fixed = tokens(text, Some(9));
        assert_eq!(fixed.len(), 9);
        assert!(!fixed.concat().ends_with(' '));
    }
}
