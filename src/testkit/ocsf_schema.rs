//! Compiles the OCSF schema repository (plain files: dictionary.json, events/, objects/,
//! profiles/) into one JSON Schema per event class and validates records against it.
//!
//! Only the objects a class reaches are compiled, each once, as `$defs` entries. What the
//! compiled schema enforces:
//! - required attributes (per class and per object) and `at_least_one` / `just_one` constraints;
//! - attribute types (string, integer, number, boolean, regex and length of typed strings);
//! - enum values, and that a sibling caption (`activity_name`, `severity`, `status`...) is the
//!   caption of its id unless the id is 99 (Other);
//! - no attribute outside the class (or object) definition, except inside `unmapped`;
//! - attributes of a profile only when the record lists that profile in `metadata.profiles`;
//! - `class_uid`, `category_uid` and `type_uid = class_uid * 100 + activity_id`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Map, Value};

/// Where the OCSF schema files live: `OCSF_SCHEMA_DIR`, else the copy of release 1.8.0 in
/// tests/ocsf-schema.
pub fn schema_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OCSF_SCHEMA_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocsf-schema")
}

/// The schema repository, read once.
pub struct OcsfSchema {
    pub version: String,
    dictionary: Map<String, Value>,
    types: Map<String, Value>,
    categories: HashMap<String, u64>,
    /// Event classes and their abstract parents, by name.
    events: HashMap<String, Value>,
    objects: HashMap<String, Value>,
    /// Profiles by the path events and objects `$include` them with (`profiles/host.json`).
    profiles: HashMap<String, Value>,
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; set OCSF_SCHEMA_DIR to the OCSF schema repository (release 1.8.0)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn by_name(dir: &Path) -> HashMap<String, Value> {
    let mut files = Vec::new();
    json_files(dir, &mut files);
    files
        .into_iter()
        .map(|path| {
            let def = read_json(&path);
            let name = def["name"]
                .as_str()
                .expect("definition has a name")
                .to_owned();
            (name, def)
        })
        .collect()
}

/// Merges `overlay` into `base`: objects key by key (so enums gain values), anything else replaced.
fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// A class or object definition with its parents and included profiles folded in.
struct Resolved {
    attributes: Map<String, Value>,
    constraints: Map<String, Value>,
    category: Option<String>,
    uid: Option<u64>,
}

impl OcsfSchema {
    pub fn load(dir: &Path) -> OcsfSchema {
        let dictionary = read_json(&dir.join("dictionary.json"));
        let categories = read_json(&dir.join("categories.json"));
        let mut profiles = HashMap::new();
        for (name, def) in by_name(&dir.join("profiles")) {
            profiles.insert(format!("profiles/{name}.json"), def);
        }
        OcsfSchema {
            version: read_json(&dir.join("version.json"))["version"]
                .as_str()
                .expect("version.json has a version")
                .to_owned(),
            dictionary: dictionary["attributes"].as_object().unwrap().clone(),
            types: dictionary["types"]["attributes"]
                .as_object()
                .unwrap()
                .clone(),
            categories: categories["attributes"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, c)| (name.clone(), c["uid"].as_u64().unwrap()))
                .collect(),
            events: by_name(&dir.join("events")),
            objects: by_name(&dir.join("objects")),
            profiles,
        }
    }

    fn resolve(&self, def: &Value, family: &HashMap<String, Value>) -> Resolved {
        let mut resolved = match def.get("extends").and_then(Value::as_str) {
            Some(parent) => {
                let parent = family
                    .get(parent)
                    .unwrap_or_else(|| panic!("unknown parent {parent}"));
                self.resolve(parent, family)
            }
            None => Resolved {
                attributes: Map::new(),
                constraints: Map::new(),
                category: None,
                uid: None,
            },
        };
        let own = def["attributes"].as_object().cloned().unwrap_or_default();
        for include in own
            .get("$include")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = include.as_str().unwrap();
            let profile = self
                .profiles
                .get(path)
                .unwrap_or_else(|| panic!("unknown include {path}"));
            let name = profile["name"].clone();
            for (attr, spec) in profile["attributes"].as_object().unwrap() {
                let mut spec = spec.clone();
                spec["profile"] = name.clone();
                merge_attribute(&mut resolved.attributes, attr, &spec);
            }
        }
        for (attr, spec) in own.iter().filter(|(k, _)| *k != "$include") {
            merge_attribute(&mut resolved.attributes, attr, spec);
        }
        if let Some(constraints) = def.get("constraints").and_then(Value::as_object) {
            resolved.constraints = constraints.clone();
        }
        if let Some(category) = def.get("category").and_then(Value::as_str) {
            resolved.category = Some(category.to_owned());
        }
        resolved.uid = def.get("uid").and_then(Value::as_u64);
        resolved
    }

    /// `(class_uid, class name)` of every concrete event class.
    pub fn classes(&self) -> Vec<(u64, String)> {
        let mut classes: Vec<(u64, String)> = self
            .events
            .values()
            .filter_map(|def| {
                if def["name"] == "base_event" {
                    // The generic class: uid 0 in category 0 ("other" in the files).
                    return Some((0, "base_event".to_owned()));
                }
                let resolved = self.resolve(def, &self.events);
                let category = self.categories.get(resolved.category.as_deref()?)?;
                Some((
                    category * 1000 + resolved.uid?,
                    def["name"].as_str()?.to_owned(),
                ))
            })
            .collect();
        classes.sort();
        classes
    }

    /// The JSON Schema of one class, for records that list `profiles` in `metadata.profiles`.
    pub fn class_schema(&self, class_uid: u64, profiles: &BTreeSet<String>) -> Value {
        let (_, name) = self
            .classes()
            .into_iter()
            .find(|(uid, _)| *uid == class_uid)
            .unwrap_or_else(|| panic!("OCSF {} has no class {class_uid}", self.version));
        let resolved = self.resolve(&self.events[&name], &self.events);
        let category_uid = match resolved.category.as_deref() {
            Some("other") | None => 0,
            Some(category) => self.categories[category],
        };
        let mut compiler = Compiler {
            schema: self,
            profiles,
            defs: Map::new(),
        };
        let mut schema = compiler.object_schema(&resolved);
        let properties = schema["properties"].as_object_mut().unwrap();
        properties.insert("class_uid".into(), json!({ "const": class_uid }));
        properties.insert("category_uid".into(), json!({ "const": category_uid }));
        let activities: Vec<u64> = resolved.attributes["activity_id"]["enum"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        let mut type_rules = schema["allOf"].as_array().cloned().unwrap_or_default();
        for activity in activities {
            type_rules.push(json!({
                "if": { "properties": { "activity_id": { "const": activity } }, "required": ["activity_id"] },
                "then": { "properties": { "type_uid": { "const": class_uid * 100 + activity } } }
            }));
        }
        schema["allOf"] = Value::Array(type_rules);
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        schema["$defs"] = Value::Object(compiler.defs);
        schema
    }

    /// Every violation of `record` against its class (named by its own `class_uid`).
    pub fn violations(&self, record: &Value) -> Vec<String> {
        let Some(class_uid) = record["class_uid"].as_u64() else {
            return vec!["class_uid is missing or not an integer".to_owned()];
        };
        if !self.classes().iter().any(|(uid, _)| *uid == class_uid) {
            return vec![format!(
                "class_uid {class_uid} is not an OCSF {} class",
                self.version
            )];
        }
        let profiles: BTreeSet<String> = record["metadata"]["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        let validator = self.validator(class_uid, profiles);
        validator
            .iter_errors(record)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect()
    }

    fn validator(
        &self,
        class_uid: u64,
        profiles: BTreeSet<String>,
    ) -> std::sync::Arc<jsonschema::Validator> {
        type Cache = Mutex<HashMap<(u64, BTreeSet<String>), std::sync::Arc<jsonschema::Validator>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = (class_uid, profiles);
        if let Some(validator) = cache.lock().unwrap().get(&key) {
            return validator.clone();
        }
        let schema = self.class_schema(class_uid, &key.1);
        let validator =
            std::sync::Arc::new(jsonschema::draft202012::new(&schema).unwrap_or_else(|e| {
                panic!("compiled schema of class {class_uid} is invalid: {e}")
            }));
        cache.lock().unwrap().insert(key, validator.clone());
        validator
    }
}

/// The OCSF schema of `schema_dir()`, loaded once per test binary.
pub fn schema() -> &'static OcsfSchema {
    static SCHEMA: OnceLock<OcsfSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| OcsfSchema::load(&schema_dir()))
}

/// Panics with every violation when `record` is not a valid record of its OCSF class.
pub fn assert_valid_ocsf(record: &Value) {
    let violations = schema().violations(record);
    assert!(
        violations.is_empty(),
        "record violates OCSF {} class {}:\n{}\nrecord: {record}",
        schema().version,
        record["class_uid"],
        violations.join("\n")
    );
}

fn merge_attribute(attributes: &mut Map<String, Value>, name: &str, spec: &Value) {
    match attributes.get_mut(name) {
        Some(existing) => deep_merge(existing, spec),
        None => {
            attributes.insert(name.to_owned(), spec.clone());
        }
    }
}

struct Compiler<'a> {
    schema: &'a OcsfSchema,
    profiles: &'a BTreeSet<String>,
    defs: Map<String, Value>,
}

impl Compiler<'_> {
    fn object_schema(&mut self, resolved: &Resolved) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut rules = Vec::new();
        let mut siblings = Vec::new();
        for (name, spec) in &resolved.attributes {
            if let Some(profile) = spec.get("profile").and_then(Value::as_str) {
                if !self.profiles.contains(profile) {
                    continue;
                }
            }
            let mut full = self
                .schema
                .dictionary
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("attribute {name} is not in the dictionary"));
            deep_merge(&mut full, spec);
            if full["requirement"] == "required" {
                required.push(json!(name));
            }
            let type_name = full["type"].as_str().unwrap_or("string_t").to_owned();
            let mut property = self.type_schema(&type_name);
            if let Some(values) = full.get("enum").and_then(Value::as_object) {
                let integer = property["type"] == "integer";
                let values: Vec<Value> = values
                    .keys()
                    .map(|k| {
                        if integer {
                            json!(k.parse::<i64>().unwrap())
                        } else {
                            json!(k)
                        }
                    })
                    .collect();
                property["enum"] = Value::Array(values);
                if let (Some(sibling), false) = (full["sibling"].as_str(), full["is_array"] == true)
                {
                    siblings.push((
                        name.clone(),
                        sibling.to_owned(),
                        full["enum"].clone(),
                        integer,
                    ));
                }
            }
            if full["is_array"] == true {
                property = json!({ "type": "array", "items": property });
            }
            properties.insert(name.clone(), property);
        }
        for (id, sibling, values, integer) in siblings {
            if !properties.contains_key(&sibling) {
                continue;
            }
            for (key, value) in values.as_object().unwrap() {
                if key == "99" {
                    continue;
                }
                let id_value = if integer {
                    json!(key.parse::<i64>().unwrap())
                } else {
                    json!(key)
                };
                rules.push(json!({
                    "if": { "properties": { &id: { "const": id_value } }, "required": [&id] },
                    "then": { "properties": { &sibling: { "const": value["caption"] } } }
                }));
            }
        }
        for (kind, names) in &resolved.constraints {
            let alternatives: Vec<Value> = names
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| properties.contains_key(n.as_str().unwrap()))
                .map(|n| json!({ "required": [n] }))
                .collect();
            if alternatives.is_empty() {
                continue;
            }
            match kind.as_str() {
                "at_least_one" => rules.push(json!({ "anyOf": alternatives })),
                "just_one" => rules.push(json!({ "oneOf": alternatives })),
                other => panic!("unknown constraint {other}"),
            }
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        });
        if !rules.is_empty() {
            schema["allOf"] = Value::Array(rules);
        }
        schema
    }

    fn type_schema(&mut self, type_name: &str) -> Value {
        if let Some(def) = self.schema.types.get(type_name) {
            let mut schema = match def.get("type").and_then(Value::as_str) {
                Some(base) => self.type_schema(base),
                None => match type_name {
                    "string_t" => json!({ "type": "string" }),
                    "integer_t" | "long_t" => json!({ "type": "integer" }),
                    "float_t" => json!({ "type": "number" }),
                    "boolean_t" => json!({ "type": "boolean" }),
                    "json_t" => json!({}),
                    other => panic!("primitive type {other} has no JSON Schema form"),
                },
            };
            if let Some(regex) = def.get("regex") {
                schema["pattern"] = regex.clone();
            }
            if let Some(max) = def.get("max_len") {
                schema["maxLength"] = max.clone();
            }
            if let Some([min, max]) = def
                .get("range")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                schema["minimum"] = min.clone();
                schema["maximum"] = max.clone();
            }
            return schema;
        }
        if type_name == "object" {
            // Free-form (`unmapped`, `data`...): anything the source had.
            return json!({ "type": "object" });
        }
        if !self.defs.contains_key(type_name) {
            // Placeholder first: objects reach each other in cycles.
            self.defs.insert(type_name.to_owned(), json!({}));
            let def = self
                .schema
                .objects
                .get(type_name)
                .unwrap_or_else(|| panic!("unknown object type {type_name}"));
            let resolved = self.schema.resolve(def, &self.schema.objects);
            let compiled = self.object_schema(&resolved);
            self.defs.insert(type_name.to_owned(), compiled);
        }
        json!({ "$ref": format!("#/$defs/{type_name}") })
    }
}
