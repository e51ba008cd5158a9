//! The CPU backend against Hugging Face transformers' own outputs for the tiny random BLIPs.

mod common;

use common::*;
use edgecap::preprocess::decode_image;

fn vision_and_step0(model: &str, image: &str) -> (Vec<f32>, Vec<f32>) {
    common::vision_and_step0(&hf_model(model), image)
}

#[test]
fn vision_states_and_step0_logits_match_hf() {
    for (reference_file, model) in [
        ("reference/tiny_ref.safetensors", "models/blip-tiny-random"),
        ("reference/tiny_ref_64x64.safetensors", "models/blip-tiny-random"),
        ("reference/tiny_eos_ref.safetensors", "models/blip-tiny-random-eos"),
    ] {
        let r = reference(reference_file);
        let meta: serde_json::Value =
            serde_json::from_slice(&read(&reference_file.replace(".safetensors", ".json"))).unwrap();
        let image = meta["image"].as_str().unwrap();
        let (vision, logits) = vision_and_step0(model, image);
        let dv = max_abs_diff(&vision, &r["vision_last_hidden_state"].1);
        let dl = max_abs_diff(&logits, &r["step0_logits"].1);
        println!("{reference_file}: vision max|diff| {dv:.2e}, step-0 logits max|diff| {dl:.2e}");
        assert!(dv <= 1e-4, "vision last hidden state differs by {dv}");
        assert!(dl <= 1e-4, "step-0 logits differ by {dl}");
    }
}

#[test]
fn every_case_gives_hf_token_ids() {
    let mut models = std::collections::HashMap::new();
    for case in cases() {
        let cap = models.entry(case.model.clone()).or_insert_with(|| hf_model(&case.model));
        let img = decode_image(&read(&case.image)).unwrap();
        let got = pollster::block_on(cap.caption(&img, &mode_options(&case.mode))).unwrap();
        assert_eq!(got.token_ids, case.token_ids, "{} {} {}", case.model, case.image, case.mode);
        assert_eq!(got.caption, case.caption, "{} {} {}", case.model, case.image, case.mode);
    }
}

#[test]
fn hub_layout_with_explicit_lm_head_gives_identical_results() {
    let (v1, l1) = vision_and_step0("models/blip-tiny-random", "images/synthetic_640x480.png");
    let (v2, l2) = vision_and_step0("models/blip-tiny-random-hubkeys", "images/synthetic_640x480.png");
    assert_eq!(v1, v2);
    assert_eq!(l1, l2);
    let (a, b) = (hf_model("models/blip-tiny-random"), hf_model("models/blip-tiny-random-hubkeys"));
    for image in ["images/synthetic_160x120.png", "images/synthetic_64x64.png", "images/synthetic_640x480.png"] {
        let img = decode_image(&read(image)).unwrap();
        for mode in ["greedy", "prompt", "beam3"] {
            let o = mode_options(mode);
            let (x, y) =
                (pollster::block_on(a.caption(&img, &o)).unwrap(), pollster::block_on(b.caption(&img, &o)).unwrap());
            assert_eq!(x.token_ids, y.token_ids, "{image} {mode}");
        }
    }
}
