//! The one registry macro behind both families' objective enums.

/// Declares the objective files of a family, a serde-tagged enum (tag `kind`) with one variant
/// per objective, its tag lists and its dispatch to the family's trait: one line per objective.
///
/// `objective_registry!(Enum, Trait, accessor; Variant(module::Config) = "tag" | "alias"; ...)`
/// gives `mod module; pub use module::*;` for every line, `Enum` with `KINDS`,
/// `ACCEPTED_KINDS` (tags and aliases), `name()`, `accessor() -> &dyn Trait` and
/// `registered()` (every default configuration, in registry order).
macro_rules! objective_registry {
    (
        $(#[$enum_doc:meta])* $enum:ident, $trait:ident, $accessor:ident;
        $( $(#[$doc:meta])* $variant:ident($module:ident::$config:ident) = $tag:literal $(| $alias:literal)*; )*
    ) => {
        $( mod $module; pub use $module::*; )*

        $(#[$enum_doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind")]
        pub enum $enum {
            $( $(#[$doc])* #[serde(rename = $tag $(, alias = $alias)*)] $variant($config), )*
        }

        impl $enum {
            /// The serde tag of every registered objective.
            pub const KINDS: &'static [&'static str] = &[$($tag),*];

            /// Every tag the parser accepts: [`Self::KINDS`] and the aliases of earlier
            /// releases.
            pub const ACCEPTED_KINDS: &'static [&'static str] = &[$($tag $(, $alias)*),*];

            /// Short name used in logs and reports (the serde tag).
            pub fn name(&self) -> &'static str {
                match self { $( Self::$variant(_) => $tag, )* }
            }

            /// The objective behind this configuration.
            pub fn $accessor(&self) -> &dyn $trait {
                match self { $( Self::$variant(c) => c, )* }
            }

            /// The default configuration of every registered objective, in registry order.
            pub fn registered() -> Vec<Self> {
                vec![$( Self::$variant(<$config>::default()), )*]
            }
        }
    };
}

pub(crate) use objective_registry;
