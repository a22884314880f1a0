//! Which service a build's line belongs to, from the build tools' own output:
//!
//! - BuildKit's plain progress (`docker compose build` with BuildKit) names the service in a
//!   step's first line, `#5 [web 2/4] RUN …`; the step's later lines (`#5 0.311 …`,
//!   `#5 DONE 0.4s`) carry only its number;
//! - the classic builder under Compose (`docker-compose build`) opens each service's part
//!   with `Building web`, and says `web uses an image, skipping` of the others.
//!
//! A line no rule claims goes to the capture's `--service`, or to the project as a whole.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

/// `#5 [web 2/4] RUN …` or `#5 …`: the step's number, and the bracket's first word.
static STEP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^#(\d{1,6})(?: \[([^\]\s]+)[^\]]*\])?").expect("a valid regex"));
/// `Building web`, alone on its line.
static SECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Building ([a-zA-Z0-9][a-zA-Z0-9_.-]*)\s*$").expect("a valid regex")
});
/// `web uses an image, skipping`.
static SKIPPING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-zA-Z0-9][a-zA-Z0-9_.-]*) uses an image, skipping").expect("a valid regex")
});

/// The most steps remembered; BuildKit numbers a build's steps from 0, so a build with more
/// is one no person reads step by step.
const MAX_STEPS: usize = 10_000;

/// Words BuildKit puts in a step's bracket that are not a service: its own steps and a
/// Dockerfile's unnamed stages.
fn is_builder_word(word: &str) -> bool {
    matches!(word, "internal" | "auth" | "exporting" | "resolve")
        || word.starts_with("stage-")
        || word.contains('/')
        || word.chars().all(|c| c.is_ascii_digit())
}

/// The attribution of one build's lines, in the order they were written.
#[derive(Debug, Default)]
pub struct Attributor {
    /// BuildKit steps by number, and the service their first line named.
    steps: HashMap<u32, String>,
    /// The classic builder's current `Building SERVICE` part.
    section: Option<String>,
}

impl Attributor {
    /// The service `text` belongs to, if its tool says.
    pub fn service_of(&mut self, text: &str) -> Option<String> {
        let plain = text.trim_start_matches(['\r', ' ']);
        if let Some(step) = STEP.captures(plain) {
            let number: u32 = step[1].parse().ok()?;
            let named = step
                .get(2)
                .map(|w| w.as_str())
                .filter(|w| !is_builder_word(w));
            return match named {
                Some(service) => {
                    if self.steps.len() < MAX_STEPS || self.steps.contains_key(&number) {
                        self.steps.insert(number, service.to_owned());
                    }
                    Some(service.to_owned())
                }
                None => self.steps.get(&number).cloned(),
            };
        }
        if let Some(section) = SECTION.captures(plain) {
            self.section = Some(section[1].to_owned());
            return self.section.clone();
        }
        if let Some(skipped) = SKIPPING.captures(plain) {
            return Some(skipped[1].to_owned());
        }
        self.section.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(lines: &[&str]) -> Vec<Option<String>> {
        let mut a = Attributor::default();
        lines.iter().map(|l| a.service_of(l)).collect()
    }

    #[test]
    fn buildkit_steps_belong_to_the_service_their_first_line_names() {
        let got = attribute(&[
            "#0 building with \"default\" instance using docker driver",
            "#1 [web internal] load build definition from Dockerfile",
            "#1 transferring dockerfile: 89B done",
            "#2 [internal] load .dockerignore",
            "#5 [db 2/3] RUN make",
            "#6 [web 2/4] COPY . /app",
            "#5 0.311 cc -o db main.c",
            "#6 DONE 0.1s",
            "#2 DONE 0.0s",
            "#9 exporting to image",
        ]);
        let want = [
            None,
            Some("web"),
            Some("web"),
            None,
            Some("db"),
            Some("web"),
        ]
        .into_iter()
        .chain([Some("db"), Some("web"), None, None]);
        assert_eq!(got, want.map(|s| s.map(String::from)).collect::<Vec<_>>());
    }

    #[test]
    fn the_classic_builder_parts_belong_to_the_service_they_open_with() {
        let got = attribute(&[
            "db uses an image, skipping",
            "Building web",
            "Step 1/2 : FROM scratch",
            " ---> Running in 3f2a",
            "Building worker",
            "Successfully tagged worker:latest",
        ]);
        let want = ["db", "web", "web", "web", "worker", "worker"];
        assert_eq!(got, want.map(|s| Some(s.to_owned())));
    }

    #[test]
    fn lines_of_no_tool_belong_to_no_service() {
        assert_eq!(
            attribute(&["compiling…", "#not a step", "Building the web of things"]),
            [None, None, None]
        );
    }
}
