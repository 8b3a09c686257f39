// Scratch harness (not committed): certify the first N test images on the bench model.
use intriguing::Classifier;
use intriguing::analysis::{Crown, CrownConfig};
use intriguing::data::Mnist;
use intriguing::models::Mlp;
use std::time::Instant;

fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse::<f64>().unwrap() * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(20, |s| s.parse().unwrap());
    let model = args.get(2).cloned().unwrap_or("FC100-100-10_5ep".into());
    let per_class = args.get(3).is_some_and(|s| s == "pc");
    let mlp = Mlp::load_safetensors(format!("/work/targets/crown/attack_bench/{model}.safetensors")).unwrap();
    let cache = "/work/scratch_crown/test200.bin";
    if std::fs::metadata(cache).is_err() {
        let mnist = Mnist::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/mnist")).unwrap();
        let v: Vec<u8> = mnist.test_images.slice(ndarray::s![..200, ..]).iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(cache, v).unwrap();
    }
    let raw = std::fs::read(cache).unwrap();
    let all: Vec<f64> = raw.chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    let xs = ndarray::Array2::from_shape_vec((200, 784), all).unwrap().slice(ndarray::s![..n, ..]).to_owned();
    let preds = mlp.predict_batch(xs.view()).unwrap();
    let crown = Crown::from_mlp(&mlp).unwrap();
    let cfg = CrownConfig::default().with_per_class(per_class);
    if let Ok(g) = std::env::var("GRID") {
        let v: Vec<f64> = g.split(',').map(|s| s.parse().unwrap()).collect();
        let (img, a, b, m) = (v[0] as usize, v[1], v[2], v[3] as usize);
        for i in 0..=m {
            let e = a + (b - a) * i as f64 / m as f64;
            let lb = crown.margin_lower_bounds(xs.row(img), preds[img], e, &cfg).unwrap();
            println!("{e:.7e} {}", lb.iter().map(|v| format!("{v:.4e}")).collect::<Vec<_>>().join(" "));
        }
        return;
    }
    let t = cpu();
    let t0 = Instant::now();
    let mut evals = 0;
    let certs = run_all(&crown, &xs, &preds, &cfg);
    for (k, c) in certs.into_iter().enumerate() {
        evals += c.evaluations;
        match &c.per_class {
            Some(p) => println!("{k} {:.12e} {} {:?}", c.untargeted, c.evaluations, p.iter().map(|v| format!("{v:.6e}")).collect::<Vec<_>>()),
            None => println!("{k} {:.12e} {}", c.untargeted, c.evaluations),
        }
    }
    eprintln!("cpu {:.2} ms/cert, wall {:.2} ms/cert, {:.2} evals/cert", (cpu() - t) * 1e3 / n as f64, t0.elapsed().as_secs_f64() * 1e3 / n as f64, evals as f64 / n as f64);
}

#[inline(never)]
fn run_all(crown: &Crown, xs: &ndarray::Array2<f64>, preds: &[usize], cfg: &CrownConfig) -> Vec<intriguing::analysis::CrownCertificate> {
    (0..xs.nrows()).map(|k| crown.certify(xs.row(k), preds[k], cfg).unwrap()).collect()
}
