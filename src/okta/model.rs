//! Typed Okta System Log `LogEvent`, read without building a `serde_json::Value` tree.
//!
//! Strings borrow from the page body when they contain no escapes. Every field is optional:
//! Okta omits or nulls whole sections depending on the event type, and adds fields over time
//! (unknown fields are skipped). Scalars accept the neighbouring JSON type (a number sent as a
//! string, a boolean sent as `"true"`) because a type drift in one field must not cost the event;
//! a value of an unusable type (`"n/a"` for a number, an object for a string) reads as unknown.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// One System Log event as Okta sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogEvent<'a> {
    #[serde(borrow)]
    pub uuid: Option<Text<'a>>,
    #[serde(borrow)]
    pub published: Option<Text<'a>>,
    #[serde(borrow)]
    pub event_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub legacy_event_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub display_message: Option<Text<'a>>,
    #[serde(borrow)]
    pub severity: Option<Text<'a>>,
    #[serde(borrow)]
    pub actor: Option<Principal<'a>>,
    #[serde(borrow)]
    pub client: Option<Client<'a>>,
    #[serde(borrow)]
    pub device: Option<Device<'a>>,
    #[serde(borrow)]
    pub authentication_context: Option<AuthenticationContext<'a>>,
    #[serde(borrow)]
    pub outcome: Option<Outcome<'a>>,
    #[serde(borrow)]
    pub security_context: Option<SecurityContext<'a>>,
    #[serde(borrow)]
    pub debug_context: Option<DebugContext<'a>>,
    #[serde(borrow)]
    pub transaction: Option<Transaction<'a>>,
    #[serde(borrow)]
    pub request: Option<Request<'a>>,
    #[serde(borrow)]
    pub target: Option<Vec<Principal<'a>>>,
}

/// `actor` and each `target[]` entry share this shape.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Principal<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow, rename = "type")]
    pub kind: Option<Text<'a>>,
    #[serde(borrow)]
    pub alternate_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub display_name: Option<Text<'a>>,
    /// Free-form object; kept verbatim.
    #[serde(borrow)]
    pub detail_entry: Option<&'a RawValue>,
}

impl Principal<'_> {
    /// A person with a usable Okta user id.
    pub fn is_user(&self) -> bool {
        let is_user_type = self
            .kind
            .as_ref()
            .is_some_and(|k| k.0.eq_ignore_ascii_case("User"));
        is_user_type && self.id.as_ref().is_some_and(|id| !id.0.trim().is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Client<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub ip_address: Option<Text<'a>>,
    #[serde(borrow)]
    pub user_agent: Option<UserAgent<'a>>,
    #[serde(borrow)]
    pub device: Option<Text<'a>>,
    #[serde(borrow)]
    pub zone: Option<Text<'a>>,
    #[serde(borrow)]
    pub geographical_context: Option<GeographicalContext<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserAgent<'a> {
    #[serde(borrow)]
    pub raw_user_agent: Option<Text<'a>>,
    #[serde(borrow)]
    pub os: Option<Text<'a>>,
    #[serde(borrow)]
    pub browser: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GeographicalContext<'a> {
    #[serde(borrow)]
    pub city: Option<Text<'a>>,
    #[serde(borrow)]
    pub state: Option<Text<'a>>,
    #[serde(borrow)]
    pub country: Option<Text<'a>>,
    #[serde(borrow)]
    pub postal_code: Option<Text<'a>>,
    pub geolocation: Option<Geolocation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Geolocation {
    pub lat: Option<Float>,
    pub lon: Option<Float>,
}

/// The device record Okta attaches to Okta Verify / FastPass events.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Device<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub name: Option<Text<'a>>,
    #[serde(borrow)]
    pub os_platform: Option<Text<'a>>,
    #[serde(borrow)]
    pub os_version: Option<Text<'a>>,
    pub managed: Option<Flag>,
    pub registered: Option<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthenticationContext<'a> {
    #[serde(borrow)]
    pub authentication_provider: Option<Text<'a>>,
    #[serde(borrow)]
    pub credential_provider: Option<Text<'a>>,
    #[serde(borrow)]
    pub credential_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub issuer: Option<Issuer<'a>>,
    #[serde(borrow)]
    pub interface: Option<Text<'a>>,
    pub authentication_step: Option<Int>,
    #[serde(borrow)]
    pub external_session_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub root_session_id: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Issuer<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow, rename = "type")]
    pub kind: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Outcome<'a> {
    #[serde(borrow)]
    pub result: Option<Text<'a>>,
    #[serde(borrow)]
    pub reason: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityContext<'a> {
    pub as_number: Option<Int>,
    #[serde(borrow)]
    pub as_org: Option<Text<'a>>,
    #[serde(borrow)]
    pub isp: Option<Text<'a>>,
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
    pub is_proxy: Option<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DebugContext<'a> {
    #[serde(borrow)]
    pub debug_data: Option<DebugData<'a>>,
}

/// The few `debugData` keys the schema uses; Okta sends dozens more, all skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DebugData<'a> {
    #[serde(borrow)]
    pub request_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub risk: Option<Text<'a>>,
    #[serde(borrow)]
    pub behaviors: Option<Text<'a>>,
    pub threat_suspected: Option<Flag>,
    #[serde(borrow)]
    pub factor: Option<Text<'a>>,
    #[serde(borrow)]
    pub root_session_id: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Transaction<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow, rename = "type")]
    pub kind: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Request<'a> {
    #[serde(borrow)]
    pub ip_chain: Option<Vec<IpHop<'a>>>,
}

/// One entry of `request.ipChain`: a proxy hop or the client itself.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpHop<'a> {
    #[serde(borrow)]
    pub ip: Option<Text<'a>>,
    #[serde(borrow)]
    pub version: Option<Text<'a>>,
    #[serde(borrow)]
    pub source: Option<Text<'a>>,
    #[serde(borrow)]
    pub geographical_context: Option<GeographicalContext<'a>>,
}

/// Skips a JSON object of unexpected type, so the caller can read the field as unknown.
fn skip_map<'de, A: de::MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map
        .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
        .is_some()
    {}
    Ok(())
}

/// Skips a JSON array of unexpected type, so the caller can read the field as unknown.
fn skip_seq<'de, A: de::SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<de::IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A string field, borrowed from the input unless it had to be unescaped.
/// Numbers and booleans are kept as their JSON text; an object or array reads as the empty
/// string (normalized to null) so that one drifted field does not cost the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub fn into_cow(self) -> Cow<'a, str> {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(if v { "true" } else { "false" })))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed("")))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map)?;
                Ok(Text(Cow::Borrowed("")))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_seq(seq)?;
                Ok(Text(Cow::Borrowed("")))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

/// An integer field; also accepts integral floats and numeric strings. Anything else (`"n/a"`,
/// a fraction, an object) is unknown (`Int(None)`) rather than an error that would cost the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub Option<i64>);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl<'de> Visitor<'de> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(Int(i64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int, E> {
                // `as` saturates; the range check keeps saturated values out.
                Ok(Int(
                    (v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
                ))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                Ok(Int(v.trim().parse().ok()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Int, E> {
                Ok(Int(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Int, E> {
                Ok(Int(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Int, A::Error> {
                skip_map(map)?;
                Ok(Int(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Int, A::Error> {
                skip_seq(seq)?;
                Ok(Int(None))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

/// A floating-point field; also accepts numeric strings. Non-finite values and other types
/// (`"unknown"`, an object) are unknown (`Float(None)`) rather than an error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Float(pub Option<f64>);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FloatVisitor;
        impl<'de> Visitor<'de> for FloatVisitor {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(Some(v).filter(|f| f.is_finite())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Float, E> {
                Ok(Float(
                    v.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                ))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Float, E> {
                Ok(Float(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Float, E> {
                Ok(Float(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Float, A::Error> {
                skip_map(map)?;
                Ok(Float(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Float, A::Error> {
                skip_seq(seq)?;
                Ok(Float(None))
            }
        }
        deserializer.deserialize_any(FloatVisitor)
    }
}

/// A boolean field; Okta sends some (e.g. `debugData.threatSuspected`) as `"true"`/`"false"`.
/// Any other string or type reads as unknown rather than failing the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl<'de> Visitor<'de> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(Some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                let v = v.trim();
                Ok(Flag(if v.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if v.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Flag, A::Error> {
                skip_map(map)?;
                Ok(Flag(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Flag, A::Error> {
                skip_seq(seq)?;
                Ok(Flag(None))
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaped_strings_borrow_and_escaped_ones_are_owned() {
        let raw = r#"{"uuid":"abc","displayMessage":"say \"hi\""}"#;
        let event: LogEvent = serde_json::from_str(raw).unwrap();
        assert!(matches!(event.uuid.unwrap().0, Cow::Borrowed("abc")));
        let message = event.display_message.unwrap().0;
        assert!(matches!(message, Cow::Owned(_)));
        assert_eq!(message, "say \"hi\"");
    }

    #[test]
    fn nulls_missing_and_unknown_fields_are_tolerated() {
        let raw = r#"{"uuid":null,"actor":null,"target":null,"client":{"zone":null,"extra":[1,2]},"newField":{"a":1}}"#;
        let event: LogEvent = serde_json::from_str(raw).unwrap();
        assert!(event.uuid.is_none() && event.actor.is_none() && event.target.is_none());
        assert!(event.client.unwrap().zone.is_none());
    }

    #[test]
    fn scalars_accept_neighbouring_json_types() {
        let raw = r#"{"securityContext":{"asNumber":"7922","isProxy":"false"},
            "debugContext":{"debugData":{"threatSuspected":"true","requestId":42}},
            "client":{"geographicalContext":{"geolocation":{"lat":"37.5","lon":-122}}}}"#;
        let event: LogEvent = serde_json::from_str(raw).unwrap();
        let security = event.security_context.unwrap();
        assert_eq!(security.as_number, Some(Int(Some(7922))));
        assert_eq!(security.is_proxy, Some(Flag(Some(false))));
        let debug = event.debug_context.unwrap().debug_data.unwrap();
        assert_eq!(debug.threat_suspected, Some(Flag(Some(true))));
        assert_eq!(debug.request_id.unwrap().0, "42");
        let geo = event.client.unwrap().geographical_context.unwrap();
        let location = geo.geolocation.unwrap();
        assert_eq!(location.lat, Some(Float(Some(37.5))));
        assert_eq!(location.lon, Some(Float(Some(-122.0))));
    }

    #[test]
    fn principal_is_user_only_with_user_type_and_an_id() {
        let user: Principal = serde_json::from_str(r#"{"id":"00u1","type":"User"}"#).unwrap();
        let no_id: Principal = serde_json::from_str(r#"{"id":" ","type":"User"}"#).unwrap();
        let system: Principal =
            serde_json::from_str(r#"{"id":"0oa1","type":"SystemPrincipal"}"#).unwrap();
        assert!(user.is_user());
        assert!(!no_id.is_user());
        assert!(!system.is_user());
    }

    #[test]
    fn scalars_of_an_unusable_type_read_as_unknown_instead_of_failing_the_event() {
        let raw = r#"{"uuid":"u","authenticationContext":{"authenticationStep":"n/a",
            "externalSessionId":{"nested":[1,{"x":2}]},"interface":[1,2]},
            "securityContext":{"asNumber":{"a":1},"isProxy":1},
            "device":{"managed":[true],"registered":{"x":true}},
            "client":{"geographicalContext":{"city":["Paris"],
                "geolocation":{"lat":"unknown","lon":[1]}}}}"#;
        let event: LogEvent = serde_json::from_str(raw).unwrap();
        assert_eq!(event.uuid.unwrap().0, "u");
        let auth = event.authentication_context.unwrap();
        assert_eq!(auth.authentication_step, Some(Int(None)));
        assert_eq!(auth.external_session_id.unwrap().0, "");
        assert_eq!(auth.interface.unwrap().0, "");
        let security = event.security_context.unwrap();
        assert_eq!(security.as_number, Some(Int(None)));
        assert_eq!(security.is_proxy, Some(Flag(None)));
        let device = event.device.unwrap();
        assert_eq!(
            (device.managed, device.registered),
            (Some(Flag(None)), Some(Flag(None)))
        );
        let geo = event.client.unwrap().geographical_context.unwrap();
        assert_eq!(geo.city.unwrap().0, "");
        let location = geo.geolocation.unwrap();
        assert_eq!(
            (location.lat, location.lon),
            (Some(Float(None)), Some(Float(None)))
        );
    }

    #[test]
    fn out_of_range_or_fractional_numbers_read_as_unknown() {
        let raw = r#"{"authenticationContext":{"authenticationStep":1.5},
            "securityContext":{"asNumber":18446744073709551615},
            "client":{"geographicalContext":{"geolocation":{"lat":"NaN","lon":"inf"}}}}"#;
        let event: LogEvent = serde_json::from_str(raw).unwrap();
        let step = event.authentication_context.unwrap().authentication_step;
        assert_eq!(step, Some(Int(None)));
        assert_eq!(event.security_context.unwrap().as_number, Some(Int(None)));
        let geo = event.client.unwrap().geographical_context.unwrap();
        let location = geo.geolocation.unwrap();
        assert_eq!(
            (location.lat, location.lon),
            (Some(Float(None)), Some(Float(None)))
        );
    }
}
