//! Small statistics shared across the library: the median of the bench's
//! timings and of the update functions' slopes.

/// The median of `xs` (not empty): the middle value, or the mean of the two
/// middle values of an even count.
pub(crate) fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}
