//! Test problems of Moré, Garbow & Hillstrom, "Testing unconstrained optimization
//! software", ACM TOMS 7 (1981) 17–41, with their standard starting points and the minimum
//! values published in that paper. Shared by tests/optim_mgh.rs, tests/optim_argmin.rs
//! and benches/optim.rs.
#![allow(dead_code, clippy::type_complexity, clippy::needless_range_loop)]

use std::f64::consts::PI;

/// A test problem: `f` and `∇f` in one call.
pub struct Problem {
    /// Number and name in MGH (1981).
    pub name: &'static str,
    /// Starting point `x0` of MGH.
    pub x0: Vec<f64>,
    /// Published local minimum values; the run must reach one of them.
    pub minima: Vec<f64>,
    /// `f(x)` with the gradient written into `g`.
    pub fg: Box<dyn Fn(&[f64], &mut [f64]) -> f64 + Send + Sync>,
}

impl Problem {
    pub fn n(&self) -> usize {
        self.x0.len()
    }
}

/// `f = Σ r_i²`, `∇f = 2 Σ r_i ∇r_i`; `res(i, x, dr)` returns `r_i` and writes `∇r_i` into `dr`
/// (zeroed beforehand).
fn sum_sq(
    x: &[f64],
    g: &mut [f64],
    m: usize,
    res: impl Fn(usize, &[f64], &mut [f64]) -> f64,
) -> f64 {
    let n = x.len();
    g.iter_mut().for_each(|v| *v = 0.0);
    let mut dr = vec![0.0; n];
    let mut f = 0.0;
    for i in 0..m {
        dr.iter_mut().for_each(|v| *v = 0.0);
        let r = res(i, x, &mut dr);
        f += r * r;
        for j in 0..n {
            g[j] += 2.0 * r * dr[j];
        }
    }
    f
}

fn p(
    name: &'static str,
    x0: Vec<f64>,
    minima: &[f64],
    fg: impl Fn(&[f64], &mut [f64]) -> f64 + Send + Sync + 'static,
) -> Problem {
    Problem {
        name,
        x0,
        minima: minima.to_vec(),
        fg: Box::new(fg),
    }
}

/// Extended Rosenbrock (MGH 21) on `n` (even) variables, written directly (no Jacobian):
/// `f = Σ_{k} 100 (x_{2k} − x_{2k−1}²)² + (1 − x_{2k−1})²`.
pub fn ext_rosenbrock_fg(x: &[f64], g: &mut [f64]) -> f64 {
    let mut f = 0.0;
    for k in 0..x.len() / 2 {
        let (a, b) = (x[2 * k], x[2 * k + 1]);
        let t = b - a * a;
        let u = 1.0 - a;
        f += 100.0 * t * t + u * u;
        g[2 * k] = -400.0 * a * t - 2.0 * u;
        g[2 * k + 1] = 200.0 * t;
    }
    f
}

pub fn ext_rosenbrock_x0(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
        .collect()
}

/// Extended Powell singular (MGH 22), `n` a multiple of 4.
pub fn ext_powell_fg(x: &[f64], g: &mut [f64]) -> f64 {
    let mut f = 0.0;
    let s5 = 5f64.sqrt();
    let s10 = 10f64.sqrt();
    for k in 0..x.len() / 4 {
        let i = 4 * k;
        let (a, b, c, d) = (x[i], x[i + 1], x[i + 2], x[i + 3]);
        let r1 = a + 10.0 * b;
        let r2 = s5 * (c - d);
        let r3 = (b - 2.0 * c).powi(2);
        let r4 = s10 * (a - d).powi(2);
        f += r1 * r1 + r2 * r2 + r3 * r3 + r4 * r4;
        let e = b - 2.0 * c;
        let h = a - d;
        g[i] = 2.0 * r1 + 2.0 * r4 * s10 * 2.0 * h;
        g[i + 1] = 2.0 * r1 * 10.0 + 2.0 * r3 * 2.0 * e;
        g[i + 2] = 2.0 * r2 * s5 - 2.0 * r3 * 4.0 * e;
        g[i + 3] = -2.0 * r2 * s5 - 2.0 * r4 * s10 * 2.0 * h;
    }
    f
}

/// The unconstrained MGH set used by the tests.
pub fn mgh_set() -> Vec<Problem> {
    let mut v = Vec::new();

    v.push(p("MGH 1 Rosenbrock", vec![-1.2, 1.0], &[0.0], |x, g| {
        sum_sq(x, g, 2, |i, x, dr| {
            if i == 0 {
                dr[0] = -20.0 * x[0];
                dr[1] = 10.0;
                10.0 * (x[1] - x[0] * x[0])
            } else {
                dr[0] = -1.0;
                1.0 - x[0]
            }
        })
    }));

    v.push(p(
        "MGH 2 Freudenstein-Roth",
        vec![0.5, -2.0],
        &[0.0, 48.9842],
        |x, g| {
            sum_sq(x, g, 2, |i, x, dr| {
                let b = x[1];
                dr[0] = 1.0;
                if i == 0 {
                    dr[1] = 10.0 * b - 3.0 * b * b - 2.0;
                    -13.0 + x[0] + ((5.0 - b) * b - 2.0) * b
                } else {
                    dr[1] = 3.0 * b * b + 2.0 * b - 14.0;
                    -29.0 + x[0] + ((b + 1.0) * b - 14.0) * b
                }
            })
        },
    ));

    v.push(p(
        "MGH 4 Brown badly scaled",
        vec![1.0, 1.0],
        &[0.0],
        |x, g| {
            sum_sq(x, g, 3, |i, x, dr| match i {
                0 => {
                    dr[0] = 1.0;
                    x[0] - 1e6
                }
                1 => {
                    dr[1] = 1.0;
                    x[1] - 2e-6
                }
                _ => {
                    dr[0] = x[1];
                    dr[1] = x[0];
                    x[0] * x[1] - 2.0
                }
            })
        },
    ));

    v.push(p("MGH 5 Beale", vec![1.0, 1.0], &[0.0], |x, g| {
        let y = [1.5, 2.25, 2.625];
        sum_sq(x, g, 3, |i, x, dr| {
            let k = (i + 1) as i32;
            let xk = x[1].powi(k);
            dr[0] = -(1.0 - xk);
            dr[1] = x[0] * k as f64 * x[1].powi(k - 1);
            y[i] - x[0] * (1.0 - xk)
        })
    }));

    v.push(p(
        "MGH 6 Jennrich-Sampson (m=10)",
        vec![0.3, 0.4],
        &[124.362],
        |x, g| {
            sum_sq(x, g, 10, |i, x, dr| {
                let t = (i + 1) as f64;
                let (e1, e2) = ((t * x[0]).exp(), (t * x[1]).exp());
                dr[0] = -t * e1;
                dr[1] = -t * e2;
                2.0 + 2.0 * t - (e1 + e2)
            })
        },
    ));

    v.push(p(
        "MGH 7 Helical valley",
        vec![-1.0, 0.0, 0.0],
        &[0.0],
        |x, g| {
            sum_sq(x, g, 3, |i, x, dr| {
                let r2 = x[0] * x[0] + x[1] * x[1];
                match i {
                    0 => {
                        let mut theta = (x[1] / x[0]).atan() / (2.0 * PI);
                        if x[0] < 0.0 {
                            theta += 0.5;
                        }
                        dr[0] = -10.0 * 10.0 * (-x[1] / (2.0 * PI * r2));
                        dr[1] = -10.0 * 10.0 * (x[0] / (2.0 * PI * r2));
                        dr[2] = 10.0;
                        10.0 * (x[2] - 10.0 * theta)
                    }
                    1 => {
                        let r = r2.sqrt();
                        dr[0] = 10.0 * x[0] / r;
                        dr[1] = 10.0 * x[1] / r;
                        10.0 * (r - 1.0)
                    }
                    _ => {
                        dr[2] = 1.0;
                        x[2]
                    }
                }
            })
        },
    ));

    v.push(p(
        "MGH 8 Bard",
        vec![1.0, 1.0, 1.0],
        &[8.21487e-3, 17.4286],
        |x, g| {
            let y = [
                0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34, 2.10,
                4.39,
            ];
            sum_sq(x, g, 15, |i, x, dr| {
                let u = (i + 1) as f64;
                let vv = 16.0 - u;
                let w = u.min(vv);
                let den = vv * x[1] + w * x[2];
                dr[0] = -1.0;
                dr[1] = u * vv / (den * den);
                dr[2] = u * w / (den * den);
                y[i] - (x[0] + u / den)
            })
        },
    ));

    v.push(p(
        "MGH 9 Gaussian",
        vec![0.4, 1.0, 0.0],
        &[1.12793e-8],
        |x, g| {
            let y = [
                0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989, 0.3521, 0.2420,
                0.1295, 0.0540, 0.0175, 0.0044, 0.0009,
            ];
            sum_sq(x, g, 15, |i, x, dr| {
                let t = (8.0 - (i + 1) as f64) / 2.0;
                let d = t - x[2];
                let e = (-x[1] * d * d / 2.0).exp();
                dr[0] = e;
                dr[1] = x[0] * e * (-d * d / 2.0);
                dr[2] = x[0] * e * (x[1] * d);
                x[0] * e - y[i]
            })
        },
    ));

    v.push(p(
        "MGH 12 Box 3-D (m=10)",
        vec![0.0, 10.0, 20.0],
        &[0.0],
        |x, g| {
            sum_sq(x, g, 10, |i, x, dr| {
                let t = 0.1 * (i + 1) as f64;
                let (e1, e2) = ((-t * x[0]).exp(), (-t * x[1]).exp());
                let c = (-t).exp() - (-10.0 * t).exp();
                dr[0] = -t * e1;
                dr[1] = t * e2;
                dr[2] = -c;
                e1 - e2 - x[2] * c
            })
        },
    ));

    v.push(p(
        "MGH 13 Powell singular",
        vec![3.0, -1.0, 0.0, 1.0],
        &[0.0],
        ext_powell_fg,
    ));

    v.push(p(
        "MGH 14 Wood",
        vec![-3.0, -1.0, -3.0, -1.0],
        &[0.0],
        |x, g| {
            let s90 = 90f64.sqrt();
            let s10 = 10f64.sqrt();
            sum_sq(x, g, 6, |i, x, dr| match i {
                0 => {
                    dr[0] = -20.0 * x[0];
                    dr[1] = 10.0;
                    10.0 * (x[1] - x[0] * x[0])
                }
                1 => {
                    dr[0] = -1.0;
                    1.0 - x[0]
                }
                2 => {
                    dr[2] = -2.0 * s90 * x[2];
                    dr[3] = s90;
                    s90 * (x[3] - x[2] * x[2])
                }
                3 => {
                    dr[2] = -1.0;
                    1.0 - x[2]
                }
                4 => {
                    dr[1] = s10;
                    dr[3] = s10;
                    s10 * (x[1] + x[3] - 2.0)
                }
                _ => {
                    dr[1] = 1.0 / s10;
                    dr[3] = -1.0 / s10;
                    (x[1] - x[3]) / s10
                }
            })
        },
    ));

    v.push(p(
        "MGH 15 Kowalik-Osborne",
        vec![0.25, 0.39, 0.415, 0.39],
        &[3.07505e-4, 1.02734e-3],
        |x, g| {
            let y = [
                0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235,
                0.0246,
            ];
            let u = [
                4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625,
            ];
            sum_sq(x, g, 11, |i, x, dr| {
                let ui = u[i];
                let num = ui * ui + ui * x[1];
                let den = ui * ui + ui * x[2] + x[3];
                dr[0] = -num / den;
                dr[1] = -x[0] * ui / den;
                dr[2] = x[0] * num * ui / (den * den);
                dr[3] = x[0] * num / (den * den);
                y[i] - x[0] * num / den
            })
        },
    ));

    v.push(p(
        "MGH 16 Brown-Dennis (m=20)",
        vec![25.0, 5.0, -5.0, -1.0],
        &[85822.2],
        |x, g| {
            sum_sq(x, g, 20, |i, x, dr| {
                let t = (i + 1) as f64 / 5.0;
                let a = x[0] + t * x[1] - t.exp();
                let b = x[2] + x[3] * t.sin() - t.cos();
                dr[0] = 2.0 * a;
                dr[1] = 2.0 * a * t;
                dr[2] = 2.0 * b;
                dr[3] = 2.0 * b * t.sin();
                a * a + b * b
            })
        },
    ));

    v.push(p(
        "MGH 18 Biggs EXP6 (m=13)",
        vec![1.0, 2.0, 1.0, 1.0, 1.0, 1.0],
        &[5.65565e-3, 0.0, 3.06367e-1],
        |x, g| {
            sum_sq(x, g, 13, |i, x, dr| {
                let t = 0.1 * (i + 1) as f64;
                let y = (-t).exp() - 5.0 * (-10.0 * t).exp() + 3.0 * (-4.0 * t).exp();
                let (e1, e2, e5) = ((-t * x[0]).exp(), (-t * x[1]).exp(), (-t * x[4]).exp());
                dr[0] = -t * x[2] * e1;
                dr[1] = t * x[3] * e2;
                dr[2] = e1;
                dr[3] = -e2;
                dr[4] = -t * x[5] * e5;
                dr[5] = e5;
                x[2] * e1 - x[3] * e2 + x[5] * e5 - y
            })
        },
    ));

    v.push(p(
        "MGH 17 Osborne 1",
        vec![0.5, 1.5, -1.0, 0.01, 0.02],
        &[5.46489e-5],
        |x, g| {
            let y = [
                0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751, 0.718,
                0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490, 0.478, 0.467,
                0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406,
            ];
            sum_sq(x, g, 33, |i, x, dr| {
                let t = 10.0 * i as f64;
                let (e4, e5) = ((-t * x[3]).exp(), (-t * x[4]).exp());
                dr[0] = -1.0;
                dr[1] = -e4;
                dr[2] = -e5;
                dr[3] = t * x[1] * e4;
                dr[4] = t * x[2] * e5;
                y[i] - (x[0] + x[1] * e4 + x[2] * e5)
            })
        },
    ));

    v.push(p(
        "MGH 20 Watson (n=6)",
        vec![0.0; 6],
        &[2.28767e-3],
        |x, g| {
            let n = x.len();
            sum_sq(x, g, 31, |i, x, dr| {
                if i < 29 {
                    let t = (i + 1) as f64 / 29.0;
                    let mut s1 = 0.0;
                    for j in 1..n {
                        s1 += j as f64 * x[j] * t.powi(j as i32 - 1);
                    }
                    let mut s2 = 0.0;
                    for j in 0..n {
                        s2 += x[j] * t.powi(j as i32);
                    }
                    for j in 0..n {
                        let d1 = if j >= 1 {
                            j as f64 * t.powi(j as i32 - 1)
                        } else {
                            0.0
                        };
                        dr[j] = d1 - 2.0 * s2 * t.powi(j as i32);
                    }
                    s1 - s2 * s2 - 1.0
                } else if i == 29 {
                    dr[0] = 1.0;
                    x[0]
                } else {
                    dr[0] = -2.0 * x[0];
                    dr[1] = 1.0;
                    x[1] - x[0] * x[0] - 1.0
                }
            })
        },
    ));

    v.push(p(
        "MGH 21 Extended Rosenbrock (n=1000)",
        ext_rosenbrock_x0(1000),
        &[0.0],
        ext_rosenbrock_fg,
    ));

    v.push(p(
        "MGH 22 Extended Powell singular (n=100)",
        (0..100).map(|i| [3.0, -1.0, 0.0, 1.0][i % 4]).collect(),
        &[0.0],
        ext_powell_fg,
    ));

    v.push(p(
        "MGH 23 Penalty I (n=10)",
        (1..=10).map(|j| j as f64).collect(),
        &[7.08765e-5],
        |x, g| {
            let n = x.len();
            let a = 1e-5f64.sqrt();
            sum_sq(x, g, n + 1, |i, x, dr| {
                if i < n {
                    dr[i] = a;
                    a * (x[i] - 1.0)
                } else {
                    let mut s = 0.0;
                    for j in 0..n {
                        s += x[j] * x[j];
                        dr[j] = 2.0 * x[j];
                    }
                    s - 0.25
                }
            })
        },
    ));

    v.push(p(
        "MGH 24 Penalty II (n=4)",
        vec![0.5; 4],
        &[9.37629e-6],
        |x, g| {
            let n = x.len();
            let a = 1e-5f64.sqrt();
            sum_sq(x, g, 2 * n, |i, x, dr| {
                if i == 0 {
                    dr[0] = 1.0;
                    x[0] - 0.2
                } else if i < n {
                    let k = (i + 1) as f64;
                    let y = (k / 10.0).exp() + ((k - 1.0) / 10.0).exp();
                    let (ei, em) = ((x[i] / 10.0).exp(), (x[i - 1] / 10.0).exp());
                    dr[i] = a * ei / 10.0;
                    dr[i - 1] = a * em / 10.0;
                    a * (ei + em - y)
                } else if i < 2 * n - 1 {
                    let j = i - n + 1;
                    let e = (x[j] / 10.0).exp();
                    dr[j] = a * e / 10.0;
                    a * (e - (-0.1f64).exp())
                } else {
                    let mut s = 0.0;
                    for j in 0..n {
                        let c = (n - j) as f64;
                        s += c * x[j] * x[j];
                        dr[j] = 2.0 * c * x[j];
                    }
                    s - 1.0
                }
            })
        },
    ));

    v.push(p(
        "MGH 25 Variably dimensioned (n=10)",
        (1..=10).map(|j| 1.0 - j as f64 / 10.0).collect(),
        &[0.0],
        |x, g| {
            let n = x.len();
            sum_sq(x, g, n + 2, |i, x, dr| {
                if i < n {
                    dr[i] = 1.0;
                    x[i] - 1.0
                } else {
                    let s: f64 = (0..n).map(|j| (j + 1) as f64 * (x[j] - 1.0)).sum();
                    for j in 0..n {
                        dr[j] = (j + 1) as f64 * if i == n { 1.0 } else { 2.0 * s };
                    }
                    if i == n { s } else { s * s }
                }
            })
        },
    ));

    v.push(p(
        "MGH 26 Trigonometric (n=10)",
        vec![0.1; 10],
        &[0.0, 2.79506e-5],
        |x, g| {
            let n = x.len();
            let sc: f64 = x.iter().map(|v| v.cos()).sum();
            sum_sq(x, g, n, |i, x, dr| {
                for j in 0..n {
                    dr[j] = x[j].sin();
                }
                let k = (i + 1) as f64;
                dr[i] += k * x[i].sin() - x[i].cos();
                n as f64 - sc + k * (1.0 - x[i].cos()) - x[i].sin()
            })
        },
    ));

    v.push(p(
        "MGH 27 Brown almost-linear (n=10)",
        vec![0.5; 10],
        &[0.0, 1.0],
        |x, g| {
            let n = x.len();
            let s: f64 = x.iter().sum();
            sum_sq(x, g, n, |i, x, dr| {
                if i < n - 1 {
                    for j in 0..n {
                        dr[j] = 1.0;
                    }
                    dr[i] += 1.0;
                    x[i] + s - (n + 1) as f64
                } else {
                    let prod: f64 = x.iter().product();
                    for j in 0..n {
                        dr[j] = x
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| *k != j)
                            .map(|(_, v)| v)
                            .product();
                    }
                    prod - 1.0
                }
            })
        },
    ));

    v.push(p(
        "MGH 28 Discrete boundary value (n=10)",
        {
            let h = 1.0 / 11.0;
            (1..=10)
                .map(|i| i as f64 * h * (i as f64 * h - 1.0))
                .collect()
        },
        &[0.0],
        |x, g| {
            let n = x.len();
            let h = 1.0 / (n + 1) as f64;
            sum_sq(x, g, n, |i, x, dr| {
                let t = (i + 1) as f64 * h;
                let c = x[i] + t + 1.0;
                let mut r = 2.0 * x[i] + h * h * c.powi(3) / 2.0;
                dr[i] = 2.0 + 1.5 * h * h * c * c;
                if i > 0 {
                    r -= x[i - 1];
                    dr[i - 1] = -1.0;
                }
                if i + 1 < n {
                    r -= x[i + 1];
                    dr[i + 1] = -1.0;
                }
                r
            })
        },
    ));

    v.push(p(
        "MGH 29 Discrete integral equation (n=10)",
        {
            let h = 1.0 / 11.0;
            (1..=10)
                .map(|i| i as f64 * h * (i as f64 * h - 1.0))
                .collect()
        },
        &[0.0],
        |x, g| {
            let n = x.len();
            let h = 1.0 / (n + 1) as f64;
            sum_sq(x, g, n, |i, x, dr| {
                let ti = (i + 1) as f64 * h;
                let mut s1 = 0.0;
                let mut s2 = 0.0;
                for j in 0..n {
                    let tj = (j + 1) as f64 * h;
                    let c = x[j] + tj + 1.0;
                    if j <= i {
                        s1 += tj * c.powi(3);
                        dr[j] = h * (1.0 - ti) * tj * 3.0 * c * c / 2.0;
                    } else {
                        s2 += (1.0 - tj) * c.powi(3);
                        dr[j] = h * ti * (1.0 - tj) * 3.0 * c * c / 2.0;
                    }
                }
                dr[i] += 1.0;
                x[i] + h * ((1.0 - ti) * s1 + ti * s2) / 2.0
            })
        },
    ));

    v.push(p(
        "MGH 30 Broyden tridiagonal (n=10)",
        vec![-1.0; 10],
        &[0.0],
        |x, g| {
            let n = x.len();
            sum_sq(x, g, n, |i, x, dr| {
                let mut r = (3.0 - 2.0 * x[i]) * x[i] + 1.0;
                dr[i] = 3.0 - 4.0 * x[i];
                if i > 0 {
                    r -= x[i - 1];
                    dr[i - 1] = -1.0;
                }
                if i + 1 < n {
                    r -= 2.0 * x[i + 1];
                    dr[i + 1] = -2.0;
                }
                r
            })
        },
    ));

    v.push(p(
        "MGH 31 Broyden banded (n=10)",
        vec![-1.0; 10],
        &[0.0],
        |x, g| {
            let n = x.len();
            sum_sq(x, g, n, |i, x, dr| {
                let mut r = x[i] * (2.0 + 5.0 * x[i] * x[i]) + 1.0;
                dr[i] = 2.0 + 15.0 * x[i] * x[i];
                let lo = i.saturating_sub(5);
                let hi = (i + 1).min(n - 1);
                for j in lo..=hi {
                    if j != i {
                        r -= x[j] * (1.0 + x[j]);
                        dr[j] = -(1.0 + 2.0 * x[j]);
                    }
                }
                r
            })
        },
    ));

    v.push(p(
        "MGH 32 Linear full rank (n=10, m=20)",
        vec![1.0; 10],
        &[10.0],
        |x, g| {
            let n = x.len();
            let m = 20;
            let s: f64 = x.iter().sum();
            sum_sq(x, g, m, |i, _x, dr| {
                for j in 0..n {
                    dr[j] = -2.0 / m as f64;
                }
                if i < n {
                    dr[i] += 1.0;
                    x[i] - 2.0 * s / m as f64 - 1.0
                } else {
                    -2.0 * s / m as f64 - 1.0
                }
            })
        },
    ));

    v.push(p(
        "MGH 35 Chebyquad (n=8)",
        (1..=8).map(|j| j as f64 / 9.0).collect(),
        &[3.51687e-3],
        |x, g| {
            let n = x.len();
            sum_sq(x, g, n, |i, x, dr| {
                let k = i + 1; // polynomial degree
                let mut s = 0.0;
                for j in 0..n {
                    // Shifted Chebyshev T_k(2x − 1) and its x-derivative by recurrence.
                    let u = 2.0 * x[j] - 1.0;
                    let (mut t0, mut t1) = (1.0, u);
                    let (mut d0, mut d1) = (0.0, 1.0);
                    for _ in 1..k {
                        let t2 = 2.0 * u * t1 - t0;
                        let d2 = 2.0 * t1 + 2.0 * u * d1 - d0;
                        t0 = t1;
                        t1 = t2;
                        d0 = d1;
                        d1 = d2;
                    }
                    s += t1;
                    dr[j] = 2.0 * d1 / n as f64;
                }
                let y = if k % 2 == 1 {
                    0.0
                } else {
                    -1.0 / ((k * k) as f64 - 1.0)
                };
                s / n as f64 - y
            })
        },
    ));

    v
}
