//! "Did you mean" suggestions: the closest name by edit distance.

/// Edit distance between two strings, counted in `char`s: insertions, deletions,
/// substitutions and swaps of two neighbours (optimal string alignment), so that the usual
/// typos (`comit`, `fluhs`) are one edit away.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a likely typo: at most one
/// edit for short names, about a third of the name's length for longer ones.
pub(crate) fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Formats names as a list of code spans: "`a`, `b`, `c`".
pub(crate) fn code_list<'a, I>(names: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("commit", "commit"), 0);
        assert_eq!(edit_distance("comit", "commit"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("fluhs", "flush"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggests_the_closest_close_name() {
        let names = ["commit", "rollback", "close", "flush"];
        assert_eq!(did_you_mean("comit", names), Some("commit"));
        assert_eq!(did_you_mean("rolback", names), Some("rollback"));
        assert_eq!(did_you_mean("fluhs", names), Some("flush"));
        assert_eq!(did_you_mean("execute", names), None);
        assert_eq!(
            did_you_mean("commit", names),
            None,
            "an exact match is no suggestion"
        );
    }

    #[test]
    fn lists_names() {
        assert_eq!(code_list(["a", "b"]), "`a`, `b`");
        assert_eq!(code_list(Vec::<&str>::new()), "");
    }
}
