//! The low-disk guard of the daemon engine: an entry fails up front rather
//! than half-way through a pull. (The free-space call itself lives with
//! clean-disk, which also needs it.)

use std::path::Path;

use crate::failure::Failure;
use crate::inspect::parse::Image;

/// Why `images` would not fit under `root` (docker's data root), if they would not.
pub fn shortfall(root: &Path, images: &[Image]) -> Option<Failure> {
    let need = crate::plan::disk_needed(images)?;
    let free = crate::clean_disk::free_bytes(root).ok()?;
    (free < need).then(|| {
        Failure::new(
            format!("not enough disk under {}: {} MiB free, this entry needs about {} MiB", root.display(), free >> 20, need >> 20),
            crate::family::Family::Disk.hint(),
        )
    })
}
