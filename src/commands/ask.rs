//! `spatialsv ask`: ask a multimodal run a spatial question about views of a scene.

use super::Context;
use std::path::PathBuf;

use spatialsv_store::FrameStore;
use spatialsv_trainer::export::{colour_map, write_ply};
use spatialsv_trainer::mllm::eval::ask;
use spatialsv_trainer::mllm::load_mllm;

use super::{CliError, CliResult};

/// Ask a multimodal run (trained with configs/mllm.toml) a spatial question about some views
/// of a scene; print its answer, and write the 3D it lifts from those views while it answers:
/// its taps' point map as a coloured PLY (first view's camera frame, the model's normalised
/// units) and each view's predicted depth as a colour-mapped PNG beside the image.
/// A question with words the model does not know is refused, naming them.
///
/// Example:
///   spatialsv ask --checkpoint runs/mllm --dataset ds --scene synth_scan_004 --frames 0,6,12,18 "From view 1 to view 3, which way did the camera mostly move?" --out ask/
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Run directory of the multimodal model.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset holding the scene.
    #[arg(long)]
    dataset: PathBuf,
    /// Scene id.
    #[arg(long)]
    scene: String,
    /// Comma-separated frame indices of the views (view 1 first).
    #[arg(long, value_delimiter = ',', required = true)]
    frames: Vec<i64>,
    /// The question.
    question: String,
    /// Directory for the 3D lifting (points.ply, depth_{frame}.png); none when omitted.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let run = load_mllm(&spatialsv_trainer::RunDir::new(&args.checkpoint))?;
    // Unknown words are refused before anything is read.
    run.tokenizer
        .encode(&args.question)
        .map_err(|w| CliError::from(spatialsv_trainer::mllm::data::unknown_words(&w)))?;
    let ds = ctx.open(&args.dataset)?;
    let m = ds.latest()?;
    let store = FrameStore::new(ds.clone(), &m, 16);
    let index = store.frame_index()?;
    let mut refs = Vec::new();
    for f in &args.frames {
        let (r, _) = index.get(&(args.scene.clone(), *f)).ok_or_else(|| {
            CliError::User(format!(
                "scene '{}' of {} has no frame {f}",
                args.scene,
                ds.location()
            ))
        })?;
        refs.push(*r);
    }
    let a = ask(&run, &store, &refs, &args.question)?;
    out!("{}", a.answer);
    if let Some(dir) = &args.out {
        let [v, h, w] = a.size;
        std::fs::create_dir_all(dir).map_err(spatialsv_lab::LabError::output("creating", &dir))?;
        let hw = h * w;
        let colour = |k: usize, i: usize| {
            [0, 1, 2].map(|c| {
                ((a.images[(k * 3 + c) * hw + i] * 0.25 + 0.45).clamp(0.0, 1.0) * 255.0) as u8
            })
        };
        let mut cloud = Vec::with_capacity(v * hw);
        for k in 0..v {
            for i in 0..hw {
                let at = |c: usize| a.points[(k * 3 + c) * hw + i];
                cloud.push(([at(0), at(1), at(2)], colour(k, i)));
            }
            let d = &a.depth[k * hw..(k + 1) * hw];
            let (lo, hi) = d
                .iter()
                .fold((f32::MAX, 0.0f32), |(x, y), z| (x.min(*z), y.max(*z)));
            let mut img = image::RgbImage::new(2 * w as u32, h as u32);
            for y in 0..h {
                for x in 0..w {
                    let i = y * w + x;
                    img.put_pixel(x as u32, y as u32, image::Rgb(colour(k, i)));
                    let c = colour_map((d[i] - lo) / (hi - lo).max(1e-6));
                    img.put_pixel((w + x) as u32, y as u32, image::Rgb(c));
                }
            }
            let path = dir.join(format!("depth_{}.png", args.frames[k]));
            img.save(&path).map_err(|e| match e {
                image::ImageError::IoError(e) => {
                    spatialsv_lab::LabError::output("writing", &path)(e)
                }
                e => spatialsv_lab::LabError::Internal(format!("{}: {e}", path.display())),
            })?;
        }
        let ply = dir.join("points.ply");
        write_ply(&ply, &cloud).map_err(spatialsv_lab::LabError::output("writing", &ply))?;
        out!(
            "wrote the model's 3D lifting of {v} views: {} ({} points) and depth_*.png in {}",
            ply.display(),
            cloud.len(),
            dir.display()
        );
    }
    Ok(())
}
