//! Uses the packaged crate the way a dependent crate does: MNIST through the documented route
//! (`Mnist::from_env`, `INTRIGUING_MNIST_DIR`), a few seconds of training, one attack, and an
//! independent check of the reported adversarial (re-classified here, inside the box).

use intriguing::ClassifierExt;
use intriguing::attack::{AttackConfig, Target, find_minimal_perturbation};
use intriguing::data::Mnist;
use intriguing::models::{Preset, train};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mnist = Mnist::from_env()?.take(2000, 100)?;
    let (mut model, config) = Preset::Fc10(1e-4).build(0)?;
    train(
        &mut model,
        mnist.train_images.view(),
        &mnist.train_labels,
        &config.with_epochs(2)?,
        |_, _| {},
    )?;
    let error = model.error_rate(mnist.test_images.view(), &mnist.test_labels)?;
    println!("FC10(1e-4) on 2000 images: test error {:.1}%", 100.0 * error);
    if error > 0.3 {
        return Err(format!("test error {error} is far above FC10's ~10%").into());
    }

    let x = mnist.test_images.row(0);
    let label = model.predict(x)?;
    let target = (label + 1) % 10;
    let result = find_minimal_perturbation(&model, x, Target::Label(target), &AttackConfig::default())?;
    let adv = result
        .adversarial
        .as_ref()
        .ok_or("no adversarial found for an FC10 model")?;
    let reached = model.predict(adv.input.view())?;
    if reached != target {
        return Err(format!("the reported adversarial is classified {reached}, not {target}").into());
    }
    if !adv.input.iter().all(|&p| (0.0..=1.0).contains(&p)) {
        return Err("the reported adversarial leaves the [0, 1] box".into());
    }
    let rms = (adv
        .input
        .iter()
        .zip(x.iter())
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / x.len() as f64)
        .sqrt();
    if (rms - adv.rms).abs() > 1e-9 || rms <= 0.0 {
        return Err(format!("reported RMS {} but measured {rms}", adv.rms).into());
    }
    println!("test image 0: {label} -> {target}, RMS distortion {rms:.4} (re-verified, in the box)");
    Ok(())
}
