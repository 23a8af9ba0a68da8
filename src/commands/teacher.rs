//! `spatialsv teacher`: run a published teacher checkpoint directly.

use std::path::PathBuf;

use spatialsv_labeler::da3::Da3Teacher;
use spatialsv_labeler::external::npz;

use super::{CliError, CliResult, Context};

/// Run a published teacher checkpoint (Depth Anything 3) outside a dataset.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum Command {
    /// The teacher's raw predictions on images, as one clip: depth, confidence,
    /// world-to-camera extrinsics, intrinsics and ray maps at its processing resolution, in
    /// the .npz layout `label import` reads (docs/da3.md).
    ///
    /// Example:
    ///   spatialsv teacher predict --teacher DA3-SMALL/ a.jpg b.jpg c.jpg --out clip.npz
    ///   python3 -c "import numpy as np; print({k: v.shape for k, v in np.load('clip.npz').items()})"
    #[command(verbatim_doc_comment)]
    Predict {
        /// A Depth Anything 3 checkpoint folder (config.json + model.safetensors).
        #[arg(long)]
        teacher: PathBuf,
        /// Images (PNG or JPEG), the views of one clip; the first is the pose reference.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Where to write the .npz.
        #[arg(long)]
        out: PathBuf,
        /// Processing resolution (the reference's process_res: the longest side, patch
        /// multiples).
        #[arg(long, default_value_t = spatialsv_da3::preprocess::DEFAULT_PROCESS_RES)]
        process_res: u32,
    },
}

pub fn run(args: Args, _ctx: &Context) -> CliResult {
    match args.command {
        Command::Predict {
            teacher,
            images,
            out,
            process_res,
        } => {
            if !spatialsv_da3::is_checkpoint_dir(&teacher) {
                return Err(CliError::User(format!(
                    "{}: not a Depth Anything 3 checkpoint folder (config.json + model.safetensors)",
                    teacher.display()
                )));
            }
            let t = Da3Teacher::load(&teacher, process_res)?;
            eprintln!("teacher: {}", t.describe());
            let imgs = images
                .iter()
                .map(|p| {
                    image::open(p).map(|i| i.to_rgb8()).map_err(|e| {
                        CliError::User(format!("{}: not a readable image ({e})", p.display()))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let r = t.run(&imgs)?;
            let arrays = Da3Teacher::npz_arrays(&r)?;
            npz::write_f32(&out, &arrays)
                .map_err(|e| CliError::User(format!("{}: {}", out.display(), e.0)))?;
            out!(
                "wrote {} ({} views at {}x{}, process_res {process_res})",
                out.display(),
                r.prediction.views,
                r.prediction.width,
                r.prediction.height
            );
            Ok(())
        }
    }
}
