//! Bounded typo expansion for name tokens.
//!
//! The rules: a query token shorter than [`MIN_LEN_ONE_TYPO`] bytes matches only exactly; from
//! that length one edit is allowed; from [`MIN_LEN_TWO_TYPOS`] two edits are allowed, but only
//! when the first letter holds (typos at the start of a name are rarer, and unanchored
//! distance-2 balls around a name are too large to be useful). An edit is an insertion, a
//! deletion, a substitution or a transposition of two adjacent letters (restricted
//! Damerau–Levenshtein, "optimal string alignment"): transposed letters are among the most
//! common keying errors.
//!
//! [`TypoAutomaton`] runs the same rules inside the fst so that the term dictionary is walked
//! only along prefixes that can still match, without building a DFA per query.

use fst::Automaton;

/// Shortest query token that may match with one edit.
pub const MIN_LEN_ONE_TYPO: usize = 4;
/// Shortest query token that may match with two edits (first letter must hold).
pub const MIN_LEN_TWO_TYPOS: usize = 8;
/// Longest token the automaton handles; longer tokens match exactly only.
pub const MAX_FUZZY_LEN: usize = 32;

const ROW: usize = MAX_FUZZY_LEN + 1;

/// Edits allowed for a query token of `len` bytes.
pub fn max_edits(len: usize) -> u8 {
    if !(MIN_LEN_ONE_TYPO..=MAX_FUZZY_LEN).contains(&len) {
        0
    } else if len >= MIN_LEN_TWO_TYPOS {
        2
    } else {
        1
    }
}

/// Restricted Damerau–Levenshtein distance, or `None` when it exceeds `bound` (or a token is
/// longer than [`MAX_FUZZY_LEN`] + 2 bytes).
pub fn bounded_distance(a: &[u8], b: &[u8], bound: u8) -> Option<u8> {
    if a.len() > MAX_FUZZY_LEN + 2 || b.len() > MAX_FUZZY_LEN + 2 {
        return (a == b).then_some(0);
    }
    if a.len().abs_diff(b.len()) > usize::from(bound) {
        return None;
    }
    const W: usize = MAX_FUZZY_LEN + 3;
    let cap = bound.saturating_add(1);
    let mut before = [cap; W];
    let mut prev = [cap; W];
    let mut cur = [cap; W];
    for (j, cell) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *cell = u8::try_from(j).unwrap_or(u8::MAX).min(cap);
    }
    for i in 1..=a.len() {
        cur[0] = u8::try_from(i).unwrap_or(u8::MAX).min(cap);
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = u8::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(before[j - 2] + 1);
            }
            cur[j] = v.min(cap);
            row_min = row_min.min(cur[j]);
        }
        if row_min > bound {
            return None;
        }
        before = prev;
        prev = cur;
    }
    let d = prev[b.len()];
    (d <= bound).then_some(d)
}

/// True when `candidate` is an allowed typo expansion of `query` under the module rules.
pub fn is_allowed_expansion(query: &[u8], candidate: &[u8]) -> bool {
    allowed_distance(query, candidate).is_some()
}

/// The edit distance of an allowed expansion, `None` when the rules exclude it.
pub fn allowed_distance(query: &[u8], candidate: &[u8]) -> Option<u8> {
    let max = max_edits(query.len());
    let d = bounded_distance(query, candidate, max)?;
    if d >= 2 && query.first() != candidate.first() {
        return None;
    }
    Some(d)
}

/// fst automaton accepting keys `prefix ++ token` where `token` is an allowed expansion of
/// the query token.
#[derive(Debug, Clone)]
pub struct TypoAutomaton<'q> {
    prefix: &'q [u8],
    query: &'q [u8],
    max: u8,
}

impl<'q> TypoAutomaton<'q> {
    /// `query` must be at most [`MAX_FUZZY_LEN`] bytes; longer queries accept nothing fuzzy
    /// (callers look them up exactly).
    pub fn new(prefix: &'q [u8], query: &'q [u8]) -> Self {
        TypoAutomaton {
            prefix,
            query,
            max: max_edits(query.len()),
        }
    }

    fn limit(&self, state: &TypoState) -> u8 {
        match state.first {
            Some(first) if self.query.first() != Some(&first) => self.max.min(1),
            _ => self.max,
        }
    }
}

/// Walk state: bytes of the key consumed so far and the two latest DP rows.
#[derive(Debug, Clone)]
pub struct TypoState {
    consumed: usize,
    dead: bool,
    first: Option<u8>,
    last: u8,
    before: [u8; ROW],
    cur: [u8; ROW],
}

impl Automaton for TypoAutomaton<'_> {
    type State = TypoState;

    fn start(&self) -> TypoState {
        let cap = self.max + 1;
        let mut cur = [cap; ROW];
        for (j, cell) in cur.iter_mut().enumerate().take(self.query.len() + 1) {
            *cell = u8::try_from(j).unwrap_or(u8::MAX).min(cap);
        }
        TypoState {
            consumed: 0,
            dead: self.query.len() > MAX_FUZZY_LEN,
            first: None,
            last: 0,
            before: [cap; ROW],
            cur,
        }
    }

    fn is_match(&self, s: &TypoState) -> bool {
        !s.dead && s.consumed > self.prefix.len() && s.cur[self.query.len()] <= self.limit(s)
    }

    fn can_match(&self, s: &TypoState) -> bool {
        if s.dead {
            return false;
        }
        if s.consumed < self.prefix.len() {
            return true;
        }
        let limit = self.limit(s);
        s.cur[..=self.query.len()].iter().any(|&v| v <= limit)
    }

    fn accept(&self, s: &TypoState, byte: u8) -> TypoState {
        let mut next = s.clone();
        next.consumed += 1;
        if s.dead {
            return next;
        }
        if s.consumed < self.prefix.len() {
            next.dead = self.prefix[s.consumed] != byte;
            return next;
        }
        let token_pos = s.consumed - self.prefix.len(); // index of `byte` in the token
        if token_pos == 0 {
            next.first = Some(byte);
        }
        let cap = self.max + 1;
        let q = self.query;
        let mut row = [cap; ROW];
        row[0] = u8::try_from(token_pos + 1).unwrap_or(u8::MAX).min(cap);
        for j in 1..=q.len() {
            let cost = u8::from(q[j - 1] != byte);
            let mut v = (s.cur[j - 1] + cost).min(s.cur[j] + 1).min(row[j - 1] + 1);
            if token_pos > 0 && j > 1 && q[j - 2] == byte && q[j - 1] == s.last {
                v = v.min(s.before[j - 2] + 1);
            }
            row[j] = v.min(cap);
        }
        next.before = s.cur;
        next.cur = row;
        next.last = byte;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fst::{IntoStreamer, Set, Streamer};

    fn expand(words: &[&str], query: &str) -> Vec<String> {
        let mut keys: Vec<String> = words.iter().map(|w| format!("n:{w}")).collect();
        keys.push("b:fc:ZZZZ".into());
        keys.sort();
        keys.dedup();
        let set = Set::from_iter(keys).expect("sorted keys");
        let aut = TypoAutomaton::new(b"n:", query.as_bytes());
        let mut stream = set.search(aut).into_stream();
        let mut out = Vec::new();
        while let Some(k) = stream.next() {
            out.push(String::from_utf8_lossy(&k[2..]).into_owned());
        }
        out
    }

    #[test]
    fn distance_counts_transposition_as_one_edit() {
        assert_eq!(bounded_distance(b"JOSE", b"JSOE", 2), Some(1));
        assert_eq!(bounded_distance(b"JOSE", b"JOSE", 0), Some(0));
        assert_eq!(bounded_distance(b"MARIA", b"MARTA", 1), Some(1));
        assert_eq!(bounded_distance(b"MARIA", b"MAURO", 1), None);
        assert_eq!(bounded_distance(b"AB", b"ABCD", 1), None);
    }

    #[test]
    fn automaton_agrees_with_rules() {
        let words = [
            "JOSE",
            "JOSA",
            "JOSEE",
            "ROSE",
            "JSOE",
            "JOE",
            "JOSEFA",
            "ALEXANDER",
            "ALEXANDRE",
            "ALEKSANDER",
            "ELEXANDER",
            "ALXANDR",
            "OLEXANDAR",
            "ALEJANDRO",
        ];
        for q in ["JOSE", "ALEXANDER", "JOE", "ALEKSANDR"] {
            let got = expand(&words, q);
            let mut want: Vec<String> = words
                .iter()
                .filter(|w| is_allowed_expansion(q.as_bytes(), w.as_bytes()))
                .map(|w| w.to_string())
                .collect();
            want.sort();
            assert_eq!(got, want, "query {q}");
        }
        assert_eq!(expand(&words, "JOE"), vec!["JOE".to_string()]);
        let alex = expand(&words, "ALEXANDER");
        assert!(alex.contains(&"ALEKSANDER".to_string())); // two edits, first letter holds
        assert!(alex.contains(&"ELEXANDER".to_string())); // one edit at the start
        assert!(!alex.contains(&"OLEXANDAR".to_string())); // two edits, first letter changed
    }

    #[test]
    fn prefix_mismatch_accepts_nothing() {
        let set = Set::from_iter(vec!["b:JOSE", "n:JOSE"]).expect("sorted");
        let aut = TypoAutomaton::new(b"x:", b"JOSE");
        assert_eq!(
            set.search(aut)
                .into_stream()
                .into_strs()
                .map(|v| v.len())
                .ok(),
            Some(0)
        );
    }
}
