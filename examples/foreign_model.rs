//! Plugging a foreign model into `intriguing`: a plain struct holding a weight matrix
//! implements `Classifier` in about twenty lines, is validated with the gradient checker, and
//! from then on works with everything that takes a `Classifier` (error rates, attacks, ...).
//!
//! The model is a nearest-class-mean template matcher on MNIST: logits
//! `z_c = x·μ_c − ½‖μ_c‖²` (the arg-max is the nearest class mean), i.e. a linear classifier
//! whose weights are the class means.
//!
//! ```text
//! cargo run --release --example foreign_model
//! ```
//!
//! MNIST is read from `INTRIGUING_MNIST_DIR` when set, else the bundled copy.

mod common;

use intriguing::classifier::{Classifier, ClassifierExt, LogitsLoss, check_gradient};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};

/// Logits = x Wᵀ + b, with `w` `[classes, inputs]`.
struct Templates {
    w: Array2<f64>,
    b: Array1<f64>,
}

impl Classifier for Templates {
    fn input_dim(&self) -> usize {
        self.w.ncols()
    }
    fn num_classes(&self) -> usize {
        self.w.nrows()
    }
    fn logits_into(
        &self,
        x: ArrayView2<f64>,
        mut out: ArrayViewMut2<f64>,
    ) -> intriguing::Result<()> {
        out.assign(&(x.dot(&self.w.t()) + &self.b));
        Ok(())
    }
    fn loss_gradient_into(
        &self,
        x: ArrayView2<f64>,
        seed: LogitsLoss<'_>,
        mut grad: ArrayViewMut2<f64>,
    ) -> intriguing::Result<f64> {
        let z = x.dot(&self.w.t()) + &self.b; // forward
        let mut dz = Array2::zeros(z.raw_dim());
        let loss = seed(z.view(), dz.view_mut()); // dloss/dlogits
        grad.assign(&dz.dot(&self.w)); // backward: dloss/dx = dz W
        Ok(loss)
    }
}

/// A foreign model (a nearest-class-mean template matcher on MNIST) implementing Classifier,
/// validated with the gradient checker. No options.
#[derive(clap::Parser, Debug)]
#[command(name = "foreign_model")]
struct Args {}

fn main() -> std::process::ExitCode {
    let Args {} = <Args as clap::Parser>::parse();
    common::exit_status(run())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mnist = common::mnist()?;
    // "Training": the mean image of each class.
    let mut w = Array2::zeros((10, 784));
    let mut counts = [0.0; 10];
    for (row, &l) in mnist.train_images.outer_iter().zip(&mnist.train_labels) {
        w.row_mut(l).scaled_add(1.0, &row);
        counts[l] += 1.0;
    }
    for (mut r, c) in w.outer_iter_mut().zip(counts) {
        r /= c;
    }
    let b = w.map_axis(Axis(1), |r| -0.5 * r.dot(&r));
    let model = Templates { w, b };

    // Check the backward pass against central finite differences, for the loss towards a
    // target class as an attack uses it (the first test image is a 7; target 3). (At the true
    // label this confident model has loss ~0 and gradients near round-off.)
    let x = mnist.test_images.row(0);
    let report = check_gradient(&model, x, 3, 1e-4)?; // logits ~30: a larger step beats round-off
    println!(
        "gradient check: max relative error {:.2e} (worst coordinate {})",
        report.max_rel_error, report.worst_index
    );
    // The documented pass criterion (see `GradCheckReport`): round-off stays far below 1e-3.
    if report.max_rel_error >= 1e-3 {
        return Err(format!(
            "the backward pass is wrong: relative error {:.2e} in row {}",
            report.max_rel_error, report.worst_row
        )
        .into());
    }

    let err = model.error_rate(mnist.test_images.view(), &mnist.test_labels)?;
    println!("nearest-class-mean test error: {:.2}%", 100.0 * err);
    println!(
        "first test image: label {}, predicted {}",
        mnist.test_labels[0],
        model.predict(x)?
    );
    Ok(())
}
