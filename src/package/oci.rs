//! `warden oci`: the filter module as an OCI image, in the format Istio
//! pulls for a `WasmPlugin` whose `url` is `oci://…`, written as an OCI
//! image layout (a directory, or a tar of one) that `oras`, `crane` and
//! `skopeo` push as it is.
//!
//! Istio's image fetcher (`pkg/wasm/imagefetcher.go`) accepts two image
//! formats of the Wasm image specification (solo-io/wasm `spec/`):
//!
//! - **compat** ([`Variant::Compat`], the default): an ordinary image — an
//!   OCI image config (`application/vnd.oci.image.config.v1+json`) and one
//!   layer (`application/vnd.oci.image.layer.v1.tar+gzip`), a gzipped tar
//!   holding `plugin.wasm`; the manifest carries the annotation
//!   `module.wasm.image/variant: compat`. Istio tries this format first.
//!   Standard media types only, so every registry and every image tool takes
//!   it.
//! - **oci** ([`Variant::Oci`]): the artifact format of `wasme` — config
//!   `application/vnd.module.wasm.config.v1+json` and exactly two layers:
//!   the runtime config (the same media type) and the raw module
//!   (`application/vnd.module.wasm.content.layer.v1+wasm`). Some registries
//!   refuse custom media types.
//!
//! Everything is deterministic (tar entries with mtime 0, uid/gid 0, mode
//! 0644; a gzip header with mtime 0 and no file name; JSON without
//! timestamps), so one module always gives the same manifest digest. That
//! digest is what a `WasmPlugin` with an `oci://` url must pin: Istio
//! compares `spec.sha256` with the digest of the image manifest it pulled,
//! not with the module's (see [`manifest_digest`] and
//! [`crate::package::wasmplugin::pinned_sha256`]).
//!
//! ```no_run
//! use warden::package::oci::{self, Variant};
//! let wasm = std::fs::read("warden.wasm").unwrap();
//! let image = oci::Image::build(&wasm, Variant::Compat, "0.1.0").unwrap();
//! oci::write_layout_dir(&image, std::path::Path::new("warden-oci")).unwrap();
//! println!("spec.sha256 for oci:// urls: {}", image.manifest_digest_hex());
//! ```

use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest as OciDigest, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, RootFsBuilder, Sha256Digest,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `application/vnd.oci.image.manifest.v1+json`
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The compat variant's config: `application/vnd.oci.image.config.v1+json`.
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The compat variant's layer: `application/vnd.oci.image.layer.v1.tar+gzip`.
pub const TAR_GZIP_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The oci variant's config and runtime-config layer.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
/// The oci variant's module layer: the raw `.wasm`.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The file the compat layer holds; Istio looks for this base name.
pub const PLUGIN_FILE: &str = "plugin.wasm";
/// The manifest annotation the compat variant requires with a tar+gzip layer.
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
/// The layer annotation that names the file a layer holds.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// The index annotation that names a manifest's tag.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The `oci-layout` file's content.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// The image format (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// One tar+gzip layer holding `plugin.wasm`: standard media types.
    #[default]
    Compat,
    /// The raw module as a `application/vnd.module.wasm.content.layer.v1+wasm`
    /// layer beside its runtime config.
    Oci,
}

impl Variant {
    /// `compat` or `oci`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Compat => "compat",
            Variant::Oci => "oci",
        }
    }
}

/// A content-addressed blob of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its media type as the manifest (or index) names it.
    pub media_type: &'static str,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob { media_type, bytes }
    }

    /// `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", sha256_hex(&self.bytes))
    }

    /// The OCI descriptor of this blob, with `annotations` if any.
    pub fn descriptor_with(&self, annotations: Option<HashMap<String, String>>) -> Result<Descriptor, OciError> {
        let digest: Sha256Digest = sha256_hex(&self.bytes).parse().map_err(oci_error)?;
        let builder = DescriptorBuilder::default()
            .media_type(MediaType::from(self.media_type))
            .digest(OciDigest::from(digest))
            .size(self.bytes.len() as u64);
        match annotations {
            Some(annotations) => builder.annotations(annotations),
            None => builder,
        }
        .build()
        .map_err(oci_error)
    }
}

/// Whether `tag` is a tag the OCI distribution specification allows:
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. Registries refuse any other.
pub fn is_valid_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match tag.as_bytes() {
        [first, rest @ ..] => {
            word(first) && rest.len() <= 127 && rest.iter().all(|b| word(b) || matches!(b, b'.' | b'-'))
        }
        [] => false,
    }
}

/// One image: its config, layers and manifest, and the tag the layout's
/// index gives it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The format.
    pub variant: Variant,
    /// The config blob.
    pub config: Blob,
    /// The layers, in manifest order.
    pub layers: Vec<Blob>,
    /// The manifest (its bytes are what the digest covers).
    pub manifest: Blob,
    /// The tag (`org.opencontainers.image.ref.name`) in `index.json`.
    pub tag: String,
    /// The hex SHA-256 of the module itself.
    pub wasm_sha256: String,
}

/// The hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Why an image could not be built or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciError {
    /// The module does not start with `\0asm`.
    NotWasm,
    /// An image document could not be built or written: oci-spec's or
    /// serde's message.
    Document(String),
    /// The layout directory is not empty: the directory.
    NotEmpty(PathBuf),
    /// The layout path is not a directory.
    NotADirectory(PathBuf),
    /// Reading or writing failed: what the system said.
    Io(String),
}

impl std::fmt::Display for OciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OciError::NotWasm => f.write_str("not a WebAssembly module (no \\0asm header)"),
            OciError::Document(e) => write!(f, "cannot write the image: {e}"),
            OciError::NotEmpty(dir) => write!(f, "{}: the directory is not empty", dir.display()),
            OciError::NotADirectory(dir) => write!(f, "{}: not a directory", dir.display()),
            OciError::Io(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for OciError {}

impl From<io::Error> for OciError {
    fn from(e: io::Error) -> Self {
        OciError::Io(e.to_string())
    }
}

/// The JSON of an image document, its keys sorted (through a `Value`), so
/// the bytes, and the digests a WasmPlugin pins, never depend on the order
/// a type declares its fields in.
fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, OciError> {
    let value = serde_json::to_value(value).map_err(oci_error)?;
    serde_json::to_vec(&value).map_err(oci_error)
}

fn oci_error(e: impl std::fmt::Display) -> OciError {
    OciError::Document(e.to_string())
}

/// One annotation.
fn annotation(key: &str, value: &str) -> Option<HashMap<String, String>> {
    Some(HashMap::from([(key.to_owned(), value.to_owned())]))
}

/// A tar entry header as every entry here has it: no owner, no time.
fn tar_header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(kind);
    header
}

/// The compat layer: a tar holding `plugin.wasm`, gzipped. Returns the
/// tar (whose digest is the config's `diff_id`) and the gzipped layer.
fn compat_layer(wasm: &[u8]) -> Result<(Vec<u8>, Vec<u8>), OciError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar_header(wasm.len() as u64, 0o644, tar::EntryType::Regular);
    builder.append_data(&mut header, PLUGIN_FILE, wasm)?;
    let tar = builder.into_inner()?;
    let mut gz = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), Compression::best());
    gz.write_all(&tar)?;
    let layer = gz.finish()?;
    Ok((tar, layer))
}

impl Image {
    /// Builds the image of `wasm` in `variant`, tagged `tag` in the index.
    pub fn build(wasm: &[u8], variant: Variant, tag: &str) -> Result<Image, OciError> {
        if !wasm.starts_with(b"\0asm") {
            return Err(OciError::NotWasm);
        }
        let (config, layers, variant_name) = match variant {
            Variant::Compat => {
                let (tar, layer) = compat_layer(wasm)?;
                // An image config as image tools expect one; the platform is
                // Go's name for a WASI module (GOOS=wasip1, GOARCH=wasm).
                let rootfs = RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(vec![format!("sha256:{}", sha256_hex(&tar))])
                    .build()
                    .map_err(oci_error)?;
                let config = ImageConfigurationBuilder::default()
                    .architecture(Arch::Wasm)
                    .os(Os::Other("wasip1".into()))
                    .config(ConfigBuilder::default().build().map_err(oci_error)?)
                    .rootfs(rootfs)
                    .build()
                    .map_err(oci_error)?;
                let config = Blob::new(IMAGE_CONFIG_MEDIA_TYPE, to_json(&config)?);
                let layers = vec![Blob::new(TAR_GZIP_LAYER_MEDIA_TYPE, layer)];
                (config, layers, "compat")
            }
            Variant::Oci => {
                let runtime = json!({
                    "type": "envoy_proxy",
                    "abiVersions": ["proxy_abi_version_0_2_1"],
                    "config": {"root_ids": ["warden"]},
                });
                let runtime = to_json(&runtime)?;
                let config = Blob::new(WASM_CONFIG_MEDIA_TYPE, runtime.clone());
                // Istio wants exactly two layers: the runtime config and the module.
                let layers =
                    vec![Blob::new(WASM_CONFIG_MEDIA_TYPE, runtime), Blob::new(WASM_LAYER_MEDIA_TYPE, wasm.to_vec())];
                (config, layers, "oci")
            }
        };
        let titles = match variant {
            Variant::Compat => vec![None],
            Variant::Oci => vec![Some("runtime-config.json"), Some(PLUGIN_FILE)],
        };
        let layer_descriptors = layers
            .iter()
            .zip(titles)
            .map(|(layer, title)| layer.descriptor_with(title.and_then(|t| annotation(TITLE_ANNOTATION, t))))
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config.descriptor_with(None)?)
            .layers(layer_descriptors)
            .annotations(annotation(VARIANT_ANNOTATION, variant_name).unwrap_or_default())
            .build()
            .map_err(oci_error)?;
        let manifest = Blob::new(MANIFEST_MEDIA_TYPE, to_json(&manifest)?);
        Ok(Image { variant, config, layers, manifest, tag: tag.to_owned(), wasm_sha256: sha256_hex(wasm) })
    }

    /// The manifest's digest, `sha256:<hex>`: what a registry names the
    /// image by (`REPO@sha256:…`).
    pub fn manifest_digest(&self) -> String {
        self.manifest.digest()
    }

    /// The manifest's digest without `sha256:`: the `spec.sha256` of a
    /// `WasmPlugin` that pulls this image from an `oci://` url.
    pub fn manifest_digest_hex(&self) -> String {
        sha256_hex(&self.manifest.bytes)
    }

    /// `index.json` of the layout: the manifest, tagged.
    pub fn index(&self) -> Result<Vec<u8>, OciError> {
        let descriptor = self.manifest.descriptor_with(annotation(REF_NAME_ANNOTATION, &self.tag))?;
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![descriptor])
            .build()
            .map_err(oci_error)?;
        to_json(&index)
    }

    /// `oci-layout`.
    pub fn layout_file() -> Result<Vec<u8>, OciError> {
        to_json(&OciLayoutBuilder::default().image_layout_version(LAYOUT_VERSION).build().map_err(oci_error)?)
    }

    /// The layout's files, path → bytes: `oci-layout`, `index.json` and
    /// `blobs/sha256/<hex>` for the config, layers and manifest, each once.
    pub fn layout_files(&self) -> Result<Vec<(String, Vec<u8>)>, OciError> {
        let mut files =
            vec![("oci-layout".to_owned(), Image::layout_file()?), ("index.json".to_owned(), self.index()?)];
        for blob in std::iter::once(&self.config).chain(&self.layers).chain(std::iter::once(&self.manifest)) {
            let path = format!("blobs/sha256/{}", sha256_hex(&blob.bytes));
            if !files.iter().any(|(p, _)| *p == path) {
                files.push((path, blob.bytes.clone()));
            }
        }
        Ok(files)
    }
}

/// The digest Istio checks `spec.sha256` against when it pulls `wasm` as
/// `warden oci` writes it in `variant`: the manifest's, hex.
pub fn manifest_digest(wasm: &[u8], variant: Variant) -> Result<String, OciError> {
    Image::build(wasm, variant, "latest").map(|i| i.manifest_digest_hex())
}

/// Writes the layout into `dir`, which must not exist or be empty (an
/// existing layout's other images would be lost).
pub fn write_layout_dir(image: &Image, dir: &Path) -> Result<(), OciError> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(OciError::NotEmpty(dir.to_owned()));
        }
    } else if dir.exists() {
        return Err(OciError::NotADirectory(dir.to_owned()));
    }
    std::fs::create_dir_all(dir.join("blobs").join("sha256"))?;
    for (path, bytes) in image.layout_files()? {
        std::fs::write(dir.join(path), bytes)?;
    }
    Ok(())
}

/// The layout as one tar (what `skopeo`'s `oci-archive:` and `oras
/// --from-oci-layout FILE.tar` read), with its directories.
pub fn layout_tar(image: &Image) -> Result<Vec<u8>, OciError> {
    let mut builder = tar::Builder::new(Vec::new());
    let files = image.layout_files()?;
    let (tops, blobs): (Vec<_>, Vec<_>) = files.iter().partition(|(p, _)| !p.starts_with("blobs/"));
    for (path, bytes) in tops {
        let mut header = tar_header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
        builder.append_data(&mut header, path, bytes.as_slice())?;
    }
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = tar_header(0, 0o755, tar::EntryType::Directory);
        builder.append_data(&mut header, dir, io::empty())?;
    }
    for (path, bytes) in blobs {
        let mut header = tar_header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
        builder.append_data(&mut header, path, bytes.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

/// Writes the layout as a tar file.
pub fn write_layout_tar(image: &Image, file: &Path) -> Result<(), OciError> {
    std::fs::write(file, layout_tar(image)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const WASM: &[u8] = b"\0asm\x01\0\0\0 a tiny module";

    fn json_of(blob: &Blob) -> serde_json::Value {
        serde_json::from_slice(&blob.bytes).unwrap()
    }

    /// A WasmPlugin pins the manifest digest, so the same module must give
    /// the same image, byte for byte, from one Warden release to the next.
    #[test]
    fn a_module_always_gives_the_same_image() {
        let hashes = |variant| {
            let image = Image::build(WASM, variant, "1").unwrap();
            let files: Vec<(String, String)> =
                image.layout_files().unwrap().into_iter().map(|(p, b)| (p, sha256_hex(&b))).collect();
            (image.manifest_digest_hex(), files)
        };
        let expect = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(p, h)| ((*p).to_owned(), (*h).to_owned())).collect()
        };
        let compat = hashes(Variant::Compat);
        assert_eq!(compat.0, "c9b79db0492a503a8d9e98d0927549abc21955c7188ac7130d5eee1a0bfecb96");
        assert_eq!(
            compat.1,
            expect(&[
                ("oci-layout", "18f0797eab35a4597c1e9624aa4f15fd91f6254e5538c1e0d193b2a95dd4acc6"),
                ("index.json", "b566d9ad62735e8f96c602d5ef29cb79ac135c8d1c5be26bcfff69abe3cfd4f2"),
                (
                    "blobs/sha256/ac1764b3ea99644865affdecb00e3fec42c357443ad463fee99ade81ae1e8349",
                    "ac1764b3ea99644865affdecb00e3fec42c357443ad463fee99ade81ae1e8349"
                ),
                (
                    "blobs/sha256/cdc8e7ce0e27fd303ae026b2cf5285a7b88f2454b147b3e7696a203fef3c57bf",
                    "cdc8e7ce0e27fd303ae026b2cf5285a7b88f2454b147b3e7696a203fef3c57bf"
                ),
                (
                    "blobs/sha256/c9b79db0492a503a8d9e98d0927549abc21955c7188ac7130d5eee1a0bfecb96",
                    "c9b79db0492a503a8d9e98d0927549abc21955c7188ac7130d5eee1a0bfecb96"
                ),
            ])
        );
        let oci = hashes(Variant::Oci);
        assert_eq!(oci.0, "50bc1367235275024e30010fbde69512781f900e472b548033ae76ebfc42a295");
        assert_eq!(
            oci.1,
            expect(&[
                ("oci-layout", "18f0797eab35a4597c1e9624aa4f15fd91f6254e5538c1e0d193b2a95dd4acc6"),
                ("index.json", "b85dc8405cf5550abd1466c7873994daef1681f0f87071e928a162c3966ef5df"),
                (
                    "blobs/sha256/4c21e31cd0a301d2f833ea10af5e3c0a0515a624a1dd29927a4a8947e0af8257",
                    "4c21e31cd0a301d2f833ea10af5e3c0a0515a624a1dd29927a4a8947e0af8257"
                ),
                (
                    "blobs/sha256/9b9eefc384d850096861b4a075292f9576d62c8c435994e70a225e458953cb0a",
                    "9b9eefc384d850096861b4a075292f9576d62c8c435994e70a225e458953cb0a"
                ),
                (
                    "blobs/sha256/50bc1367235275024e30010fbde69512781f900e472b548033ae76ebfc42a295",
                    "50bc1367235275024e30010fbde69512781f900e472b548033ae76ebfc42a295"
                ),
            ])
        );
    }

    #[test]
    fn the_compat_image_is_one_gzipped_tar_holding_plugin_wasm() {
        let image = Image::build(WASM, Variant::Compat, "1").unwrap();
        let manifest = json_of(&image.manifest);
        assert_eq!(manifest["config"], serde_json::to_value(image.config.descriptor_with(None).unwrap()).unwrap());
        assert_eq!(manifest["layers"][0]["mediaType"], TAR_GZIP_LAYER_MEDIA_TYPE);
        assert_eq!(manifest["annotations"][VARIANT_ANNOTATION], "compat");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(image.layers[0].bytes.as_slice()).read_to_end(&mut tar).unwrap();
        let diff_id = format!("sha256:{}", sha256_hex(&tar));
        assert_eq!(json_of(&image.config)["rootfs"]["diff_ids"][0], diff_id);
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some(PLUGIN_FILE));
        assert_eq!(entry.header().mtime().unwrap(), 0);
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, WASM);
        assert!(entries.next().is_none());
    }

    #[test]
    fn the_oci_image_has_the_raw_module_and_its_runtime_config() {
        let image = Image::build(WASM, Variant::Oci, "1").unwrap();
        let manifest = json_of(&image.manifest);
        assert_eq!(manifest["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
        let types: Vec<&str> = image.layers.iter().map(|l| l.media_type).collect();
        assert_eq!(types, [WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]);
        assert_eq!(image.layers[1].bytes, WASM);
        assert_eq!(manifest["layers"][1]["digest"], format!("sha256:{}", sha256_hex(WASM)));
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        for good in ["0.1.0", "latest", "_x", "v1.2-rc_3", &"a".repeat(128)] {
            assert!(is_valid_tag(good), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", "é", &"a".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn images_are_reproducible_and_tags_do_not_change_the_digest() {
        let a = Image::build(WASM, Variant::Compat, "a").unwrap();
        let b = Image::build(WASM, Variant::Compat, "b").unwrap();
        assert_eq!(a.manifest, b.manifest);
        assert_ne!(a.index().unwrap(), b.index().unwrap());
        assert_eq!(manifest_digest(WASM, Variant::Compat).unwrap(), a.manifest_digest_hex());
        assert_ne!(manifest_digest(WASM, Variant::Oci).unwrap(), a.manifest_digest_hex());
        assert_eq!(a.wasm_sha256, sha256_hex(WASM));
        assert!(Image::build(b"not wasm", Variant::Compat, "a").is_err());
    }

    #[test]
    fn the_oci_variant_stores_the_shared_config_blob_once() {
        let image = Image::build(WASM, Variant::Oci, "1").unwrap();
        let files = image.layout_files().unwrap();
        // oci-layout, index.json, config (= runtime layer), module, manifest
        assert_eq!(files.len(), 5);
    }
}
