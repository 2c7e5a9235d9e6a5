//! Which PyTorch key each parameter of our networks is stored under.
//!
//! A [`KeyMap`] pairs module-path prefixes of our Burn networks (enum variant names left out, as
//! burn-store's `skip_enum_variants` writes them) with the key prefixes of the equivalent PyTorch
//! module's `state_dict()`; the parameter names within a layer (`weight`, `bias`,
//! `running_mean`, `running_var`, and batch norm's γ/β as `weight`/`bias`) are burn-store's
//! `BurnToPyTorchAdapter` / `PyTorchToBurnAdapter` renames.

use burn::store::KeyRemapper;
use infobound_models::ssl::BackboneConfig;
use infobound_models::{Architecture, VaeConfig};

use crate::WeightsError;

/// Prefix pairs (ours → PyTorch's), each ending in `.`; no prefix of either side is a prefix of
/// another entry's, so every key maps through exactly one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    pairs: Vec<(String, String)>,
}

impl KeyMap {
    /// The (ours, PyTorch) prefix pairs in network order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The PyTorch key of our module path `path` (e.g. `encoder.convs.0.weight` →
    /// `encoder.model.0.weight`), after burn-store's parameter renames; `None` if no pair
    /// covers it.
    pub fn to_torch(&self, path: &str) -> Option<String> {
        self.pairs.iter().find_map(|(ours, torch)| {
            path.strip_prefix(ours.as_str())
                .map(|rest| format!("{torch}{rest}"))
        })
    }

    /// burn-store's remapper from our paths to PyTorch keys (for writing).
    pub(crate) fn burn_to_torch(&self) -> Result<KeyRemapper, WeightsError> {
        remapper(
            self.pairs
                .iter()
                .map(|(ours, torch)| (ours.clone(), torch.clone())),
            "",
        )
    }

    /// burn-store's remapper from `prefix` + PyTorch keys to our paths (for reading).
    pub(crate) fn torch_to_burn(&self, prefix: &str) -> Result<KeyRemapper, WeightsError> {
        remapper(
            self.pairs
                .iter()
                .map(|(ours, torch)| (format!("{prefix}{torch}"), ours.clone())),
            prefix,
        )
    }
}

/// One anchored literal pattern per pair (burn-store applies every pattern that matches, in
/// order; no replacement matches another pair's pattern, so each key is renamed once).
fn remapper(
    pairs: impl Iterator<Item = (String, String)>,
    prefix: &str,
) -> Result<KeyRemapper, WeightsError> {
    let patterns: Vec<(String, String)> = pairs
        .map(|(from, to)| (format!("^{}", escape(&from)), to.replace('$', "$$")))
        .collect();
    KeyRemapper::from_patterns(patterns).map_err(|e| WeightsError::InvalidPrefix {
        prefix: prefix.to_string(),
        message: e.to_string(),
    })
}

/// `text` with every regex metacharacter escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The key names of a VAE's encoder and decoder, under `encoder.` and `decoder.`.
///
/// Reference: nmichlo/disent@40a8623 `disent/model/ae/_vae_conv64.py`, `EncoderConv64` and
/// `DecoderConv64` (PyTorch ports of disentanglement_lib's `conv_encoder` / `deconv_decoder`,
/// google-research/disentanglement_lib@86a644d `methods/shared/architectures.py`), whose layers
/// sit in one `nn.Sequential` called `model`:
///
/// | ours | PyTorch | layer |
/// |---|---|---|
/// | `encoder.convs.{0,1,2,3}` | `encoder.model.{0,2,4,6}` | Conv2d k4 s2, C→32→32→64→64 |
/// | `encoder.fc` | `encoder.model.9` | Linear 64·4·4 → 256 |
/// | `encoder.head` | `encoder.model.11` | Linear 256 → 2K (μ = first K, log σ² = last K) |
/// | `decoder.fc1`, `decoder.fc2` | `decoder.model.0`, `decoder.model.2` | Linear K → 256 → 1024 |
/// | `decoder.deconvs.{0,1,2,3}` | `decoder.model.{5,7,9,11}` | ConvTranspose2d k4 s2 p1, 64→64→32→32→C |
///
/// The decoder is disent's layer for layer. The encoder departs in one place: our
/// convolutions pad by 1 (TensorFlow's "same" for k4 s2 on 64 px, as disentanglement_lib), so
/// the last map is 4×4 and `encoder.model.9.weight` is [256, 1024]; disent pads by 2 (5×5 map,
/// [256, 1600]), and its checkpoints are refused with a shape error rather than loaded into a
/// different function. (YannDubs/disentangling-vae@6a00706 `disvae/models/encoders.py`
/// `EncoderBurgess` differs more: 32 channels throughout, a second 256-unit layer, and μ and
/// log σ² interleaved.) Only [`Architecture::Burgess`] has a PyTorch counterpart.
///
/// # Errors
/// [`WeightsError::UnsupportedNetwork`] for [`Architecture::SpatialBroadcast`].
pub fn vae_key_map(config: &VaeConfig) -> Result<KeyMap, WeightsError> {
    if config.architecture != Architecture::Burgess {
        return Err(WeightsError::UnsupportedNetwork {
            network: format!("VAE architecture {:?}", config.architecture),
            reason: "only the Burgess / disentanglement_lib networks have one".into(),
        });
    }
    let mut pairs = Vec::new();
    for i in 0..4 {
        pairs.push((
            format!("encoder.convs.{i}."),
            format!("encoder.model.{}.", 2 * i),
        ));
    }
    pairs.push(("encoder.fc.".into(), "encoder.model.9.".into()));
    pairs.push(("encoder.head.".into(), "encoder.model.11.".into()));
    pairs.push(("decoder.fc1.".into(), "decoder.model.0.".into()));
    pairs.push(("decoder.fc2.".into(), "decoder.model.2.".into()));
    for i in 0..4 {
        pairs.push((
            format!("decoder.deconvs.{i}."),
            format!("decoder.model.{}.", 5 + 2 * i),
        ));
    }
    Ok(KeyMap { pairs })
}

/// The key names of a ResNet backbone: torchvision's `ResNet` (pytorch/vision@f50e776
/// `torchvision/models/resnet.py`) without its classifier `fc` (SSL code replaces it by
/// `nn.Identity()`):
///
/// | ours | PyTorch |
/// |---|---|
/// | `stem.conv`, `stem.norm` | `conv1`, `bn1` |
/// | block *b* = block *j* of stage *s* | `layer{s+1}.{j}` |
/// | basic block `first`, `second` | `conv1`/`bn1`, `conv2`/`bn2` |
/// | bottleneck `reduce`, `spatial`, `expand` | `conv1`/`bn1`, `conv2`/`bn2`, `conv3`/`bn3` |
/// | `shortcut.conv`, `shortcut.norm` | `downsample.0`, `downsample.1` |
///
/// The CIFAR variant is torchvision's ResNet with `conv1 = Conv2d(C, w, 3, stride=1,
/// padding=1, bias=False)` and `maxpool = Identity()`: same keys and shapes as ResNet-18's
/// when `base_width = 64`, and the stage widths `w·(1, 2, 4, 8)` otherwise. solo-learn
/// (vturrisi/solo-learn@c980e9e `solo/methods/base.py`) pads that stem by 2 instead of 1: its
/// CIFAR checkpoints load (same keys and shapes) but compute a 34×34 first map where ours is
/// 32×32, so their features differ. Batch norms' `num_batches_tracked` counters are not
/// written (Burn's `BatchNorm` keeps none; PyTorch's `_NormBase._load_from_state_dict` fills a
/// missing one in, so `load_state_dict(strict=True)` accepts the file) and are ignored on
/// import.
pub fn backbone_key_map(config: &BackboneConfig) -> KeyMap {
    let (depths, bottleneck) = match config {
        BackboneConfig::ResNetCifar { layers, .. } => (*layers, false),
        BackboneConfig::ResNet50 { .. } => ([3, 4, 6, 3], true),
    };
    let mut pairs = vec![
        ("stem.conv.".to_string(), "conv1.".to_string()),
        ("stem.norm.".to_string(), "bn1.".to_string()),
    ];
    let parts: &[(&str, &str)] = if bottleneck {
        &[("reduce", "1"), ("spatial", "2"), ("expand", "3")]
    } else {
        &[("first", "1"), ("second", "2")]
    };
    let mut block = 0;
    for (stage, depth) in depths.into_iter().enumerate() {
        for j in 0..depth {
            let ours = format!("blocks.{block}.");
            let torch = format!("layer{}.{j}.", stage + 1);
            for (part, n) in parts {
                pairs.push((format!("{ours}{part}.conv."), format!("{torch}conv{n}.")));
                pairs.push((format!("{ours}{part}.norm."), format!("{torch}bn{n}.")));
            }
            pairs.push((
                format!("{ours}shortcut.conv."),
                format!("{torch}downsample.0."),
            ));
            pairs.push((
                format!("{ours}shortcut.norm."),
                format!("{torch}downsample.1."),
            ));
            block += 1;
        }
    }
    KeyMap { pairs }
}
