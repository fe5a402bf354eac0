//! The layout file as written: every value keeps its span so that
//! validation errors can name the line.

use serde::Deserialize;
use toml::Spanned;

use crate::geom::{Filter, Scaling};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayout {
    #[serde(default)]
    pub display: Vec<Spanned<RawDisplay>>,
    #[serde(default)]
    pub source: Vec<Spanned<RawSource>>,
    pub input: Option<Spanned<RawInput>>,
    #[serde(default)]
    pub scene: Vec<Spanned<RawScene>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScene {
    pub name: Spanned<String>,
    #[serde(default)]
    pub sources: Vec<Spanned<RawSceneSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSceneSource {
    pub name: Spanned<String>,
    pub shown: Option<bool>,
    pub rect: Option<Spanned<[i64; 4]>>,
    pub opacity: Option<Spanned<f64>>,
    pub fade_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDisplay {
    pub name: Spanned<String>,
    pub connector: Option<Spanned<String>>,
    pub device: Option<Spanned<String>>,
    pub mode: Spanned<String>,
    pub format: Option<Spanned<String>>,
    pub background: Option<Spanned<String>>,
    pub size_mm: Option<Spanned<Vec<i64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub name: Spanned<String>,
    pub guest: Option<Spanned<String>>,
    pub app_id: Option<Spanned<String>>,
    pub ivi_id: Option<Spanned<i64>>,
    pub client_uid: Option<Spanned<i64>>,
    pub display: Spanned<String>,
    pub rect: Option<Spanned<[i64; 4]>>,
    #[serde(default)]
    pub z: i32,
    #[serde(default)]
    pub scaling: Scaling,
    pub filter: Option<Filter>,
    pub rotation: Option<Spanned<i64>>,
    pub opacity: Option<Spanned<f64>>,
    pub role: Option<Spanned<String>>,
    pub alpha: Option<Spanned<String>>,
    pub input: Option<bool>,
    pub watchdog_ms: Option<Spanned<i64>>,
    pub frozen_ms: Option<Spanned<i64>>,
    pub fallback: Option<Spanned<String>>,
    pub fallback_image: Option<Spanned<String>>,
    pub label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub keyboard_focus: Option<Spanned<String>>,
}
