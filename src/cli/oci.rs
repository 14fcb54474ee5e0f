//! `warden oci`: the filter as an OCI image for `oci://` WasmPlugin urls.

use super::artifacts::filter_module;
use super::exit::{CliError, Exit, EXIT_OK};
use crate::display::shown;
use crate::package::oci;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

pub(super) const ABOUT: &str = "\
Write the filter as an OCI image (a layout directory, or a tar of one) for oci:// WasmPlugin urls.

-o DIR writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) into DIR, which
must not exist or be empty; -o FILE.tar writes the same layout as one tar. The image is in the
format Istio pulls: by default the compat variant of the Wasm image specification (one
tar+gzip layer holding plugin.wasm, standard media types: every registry takes it, Istio tries
it first); --variant oci writes the wasme artifact format (the raw module as a
application/vnd.module.wasm.content.layer.v1+wasm layer). The output is reproducible: the same
module gives the same manifest digest, which is the spec.sha256 a WasmPlugin with an oci:// url
needs (warden wasmplugin --url oci://... prints it). Push it unchanged:

  warden oci -o warden-oci
  oras cp --from-oci-layout warden-oci:0.1.0 registry.example.com/warden:0.1.0
  crane push warden-oci registry.example.com/warden:0.1.0
  skopeo copy --preserve-digests oci:warden-oci:0.1.0 docker://registry.example.com/warden:0.1.0

Exit codes: 0 written, 2 unreadable module or unwritable output.";

/// `warden oci`.
#[derive(Args)]
pub(super) struct OciArgs {
    /// A directory for the OCI image layout, or FILE.tar for the layout as one tar.
    #[arg(short, long, value_name = "DIR|FILE.tar")]
    output: PathBuf,
    /// The image format.
    #[arg(long, value_enum, default_value_t = OciVariant::Compat)]
    variant: OciVariant,
    /// The tag the layout's index.json gives the image (org.opencontainers.image.ref.name).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,
    /// Package this build of the filter instead of the one built into warden.
    #[arg(long, value_name = "FILE.wasm")]
    filter: Option<PathBuf>,
}

/// `--variant` of `warden oci`, `--oci-variant` of `warden wasmplugin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum OciVariant {
    /// One tar+gzip layer holding plugin.wasm (standard media types; Istio's first choice).
    Compat,
    /// The raw module as an application/vnd.module.wasm.content.layer.v1+wasm layer (wasme's format).
    Oci,
}

impl OciVariant {
    /// The image format it names.
    pub(super) fn variant(self) -> oci::Variant {
        match self {
            OciVariant::Compat => oci::Variant::Compat,
            OciVariant::Oci => oci::Variant::Oci,
        }
    }
}

pub(super) fn oci_image(args: OciArgs, built_in: &[u8], out: &mut dyn Write) -> Exit {
    if !oci::is_valid_tag(&args.tag) {
        return Err(CliError::Input(format!(
            "--tag '{}' is not an OCI tag: 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
            args.tag
        )));
    }
    let wasm = filter_module(args.filter.as_deref(), built_in)?;
    let module = args.filter.as_deref().map_or_else(|| "the built-in filter".to_owned(), shown);
    let variant = args.variant.variant();
    let image = oci::Image::build(&wasm, variant, &args.tag).map_err(|e| CliError::Input(format!("{module}: {e}")))?;
    let output = shown(&args.output);
    let is_tar = args.output.extension().is_some_and(|e| e.eq_ignore_ascii_case("tar"));
    let written =
        if is_tar { oci::write_layout_tar(&image, &args.output) } else { oci::write_layout_dir(&image, &args.output) };
    if let Err(e) = written {
        return Err(CliError::Input(format!("cannot write {output}: {e}")));
    }
    let what = if is_tar { "OCI image layout tar" } else { "OCI image layout" };
    let tag = &image.tag;
    writeln!(out, "wrote {output} ({what}, {} variant, tag {tag})", variant.as_str())?;
    writeln!(out, "manifest  {}", image.manifest_digest())?;
    writeln!(out, "module    sha256:{} ({} bytes)", image.wasm_sha256, wasm.len())?;
    writeln!(out, "WasmPlugin spec.sha256 for an oci:// url: {}", image.manifest_digest_hex())?;
    writeln!(out, "push it unchanged (the digest must not change), e.g.:")?;
    if is_tar {
        writeln!(out, "  oras cp --from-oci-layout {output}:{tag} REGISTRY/REPOSITORY:{tag}")?;
        writeln!(
            out,
            "  skopeo copy --preserve-digests oci-archive:{output}:{tag} docker://REGISTRY/REPOSITORY:{tag}"
        )?;
    } else {
        writeln!(out, "  oras cp --from-oci-layout {output}:{tag} REGISTRY/REPOSITORY:{tag}")?;
        writeln!(out, "  crane push {output} REGISTRY/REPOSITORY:{tag}")?;
        writeln!(out, "  skopeo copy --preserve-digests oci:{output}:{tag} docker://REGISTRY/REPOSITORY:{tag}")?;
    }
    Ok(EXIT_OK)
}
