//! The fictional organisation behind the generated System Log: users with home cities, devices and
//! networks, applications and groups. Stable per seed so persona baselines look like real routines.

use super::rng::SplitMix;

pub(crate) const ORG_DOMAIN: &str = "acme.example";
const USER_COUNT: usize = 300;
const ADMIN_COUNT: usize = 6;

pub(crate) struct City {
    pub city: &'static str,
    pub state: &'static str,
    pub country: &'static str,
    pub postal: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// First two octets of the addresses handed out by the city's ISP.
    pub ip_prefix: &'static str,
    pub as_number: i64,
    pub as_org: &'static str,
    pub isp: &'static str,
    pub domain: &'static str,
}

macro_rules! city {
    ($c:expr, $s:expr, $co:expr, $p:expr, $lat:expr, $lon:expr, $ip:expr, $asn:expr, $org:expr, $isp:expr, $dom:expr) => {
        City {
            city: $c,
            state: $s,
            country: $co,
            postal: $p,
            lat: $lat,
            lon: $lon,
            ip_prefix: $ip,
            as_number: $asn,
            as_org: $org,
            isp: $isp,
            domain: $dom,
        }
    };
}

pub(crate) const CITIES: &[City] = &[
    city!(
        "San Francisco",
        "California",
        "United States",
        "94107",
        37.7697,
        -122.3933,
        "73.15",
        7922,
        "comcast",
        "comcast cable communications llc",
        "comcast.net"
    ),
    city!(
        "Austin",
        "Texas",
        "United States",
        "78701",
        30.2711,
        -97.7437,
        "24.28",
        11427,
        "charter communications inc",
        "charter communications",
        "spectrum.com"
    ),
    city!(
        "New York",
        "New York",
        "United States",
        "10001",
        40.7484,
        -73.9967,
        "72.229",
        12271,
        "charter communications inc",
        "spectrum",
        "rr.com"
    ),
    city!(
        "Chicago",
        "Illinois",
        "United States",
        "60601",
        41.8853,
        -87.6216,
        "98.213",
        7018,
        "at&t services inc.",
        "at&t internet",
        "att.net"
    ),
    city!(
        "Seattle",
        "Washington",
        "United States",
        "98101",
        47.6101,
        -122.3344,
        "50.35",
        20115,
        "charter communications",
        "charter",
        "charter.com"
    ),
    city!(
        "Denver",
        "Colorado",
        "United States",
        "80202",
        39.7525,
        -104.9995,
        "67.165",
        7922,
        "comcast",
        "comcast cable communications llc",
        "comcast.net"
    ),
    city!(
        "Boston",
        "Massachusetts",
        "United States",
        "02110",
        42.3570,
        -71.0513,
        "71.232",
        701,
        "verizon business",
        "verizon fios",
        "verizon.net"
    ),
    city!(
        "Toronto",
        "Ontario",
        "Canada",
        "M5H",
        43.6510,
        -79.3840,
        "99.230",
        577,
        "bell canada",
        "bell canada",
        "bell.ca"
    ),
    city!(
        "London",
        "England",
        "United Kingdom",
        "EC1A",
        51.5205,
        -0.0977,
        "86.12",
        2856,
        "british telecommunications plc",
        "bt",
        "btcentralplus.com"
    ),
    city!(
        "Berlin",
        "Land Berlin",
        "Germany",
        "10115",
        52.5323,
        13.3846,
        "91.64",
        3320,
        "deutsche telekom ag",
        "deutsche telekom",
        "telekom.de"
    ),
    city!(
        "Bengaluru",
        "Karnataka",
        "India",
        "560001",
        12.9762,
        77.6033,
        "49.207",
        24560,
        "bharti airtel ltd.",
        "airtel broadband",
        "airtelbroadband.in"
    ),
    city!(
        "Sydney",
        "New South Wales",
        "Australia",
        "2000",
        -33.8688,
        151.2093,
        "101.173",
        1221,
        "telstra corporation",
        "telstra internet",
        "bigpond.net.au"
    ),
];

/// Cities only seen when someone signs in from far away (impossible travel, threat sources).
pub(crate) const FOREIGN_CITIES: &[City] = &[
    city!(
        "Lagos",
        "Lagos",
        "Nigeria",
        "100001",
        6.4541,
        3.3947,
        "105.112",
        29465,
        "mtn nigeria",
        "mtn nigeria",
        "mtnnigeria.net"
    ),
    city!(
        "Sao Paulo",
        "Sao Paulo",
        "Brazil",
        "01000",
        -23.5475,
        -46.6361,
        "177.92",
        28573,
        "claro nxt telecomunicacoes",
        "claro",
        "claro.com.br"
    ),
    city!(
        "Amsterdam",
        "North Holland",
        "Netherlands",
        "1012",
        52.3740,
        4.8897,
        "185.220",
        60729,
        "zwiebelfreunde e.v.",
        "tor exit",
        "torproject.org"
    ),
    city!(
        "Singapore",
        "Singapore",
        "Singapore",
        "018989",
        1.2897,
        103.8501,
        "159.89",
        14061,
        "digitalocean llc",
        "digitalocean",
        "digitalocean.com"
    ),
];

pub(crate) struct UserAgent {
    pub raw: &'static str,
    pub os: &'static str,
    pub browser: &'static str,
}

pub(crate) const USER_AGENTS: &[UserAgent] = &[
    UserAgent { raw: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", os: "Mac OS X", browser: "CHROME" },
    UserAgent { raw: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", os: "Windows 10", browser: "EDGE_CHROMIUM" },
    UserAgent { raw: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", os: "Windows 10", browser: "FIREFOX" },
    UserAgent { raw: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", os: "Mac OS X", browser: "SAFARI" },
    UserAgent { raw: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", os: "iOS", browser: "MOBILE_SAFARI" },
    UserAgent { raw: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", os: "Android", browser: "CHROME" },
    UserAgent { raw: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36", os: "Linux", browser: "CHROME" },
];

/// An attacker's tooling, used for threat and blocked-request events.
pub(crate) const HOSTILE_AGENT: UserAgent = UserAgent {
    raw: "python-requests/2.31.0",
    os: "Unknown",
    browser: "UNKNOWN",
};

const FIRST_NAMES: &[&str] = &[
    "Ava", "Liam", "Maya", "Noah", "Priya", "Ethan", "Sofia", "Lucas", "Chloe", "Mateo", "Zara",
    "Owen", "Hana", "Elias", "Nora", "Ravi", "Ines", "Jonas", "Leah", "Kenji", "Amara", "Felix",
    "Yara", "Tomas", "Grace", "Omar", "Isla", "Arjun", "Mila", "Diego",
];
const LAST_NAMES: &[&str] = &[
    "Nguyen", "Garcia", "Patel", "Smith", "Kim", "Muller", "Rossi", "Okafor", "Silva", "Cohen",
    "Tanaka", "Hughes", "Kowalski", "Dubois", "Larsen", "Haddad", "Moreau", "Singh", "Walsh",
    "Novak",
];

pub(crate) struct Persona {
    pub id: String,
    pub login: String,
    pub display_name: String,
    pub home: usize,
    pub agent: usize,
    pub ip: String,
    pub device_id: String,
    pub device_name: String,
}

pub(crate) struct App {
    pub id: String,
    pub name: &'static str,
    pub label: &'static str,
}

const APPS: &[(&str, &str)] = &[
    ("salesforce", "Salesforce.com"),
    ("slack", "Slack"),
    ("zoomus", "Zoom"),
    ("office365", "Microsoft Office 365"),
    ("google", "Google Workspace"),
    ("github_enterprise", "GitHub Enterprise Cloud"),
    ("atlassian", "Atlassian Cloud"),
    ("workday", "Workday"),
    ("aws_account_federation", "AWS Account Federation"),
    ("box", "Box"),
];

const GROUPS: &[&str] = &[
    "Engineering",
    "Sales",
    "Finance",
    "Contractors",
    "VPN Users",
    "Helpdesk",
    "Executives",
    "AWS Admins",
];

pub(crate) struct Group {
    pub id: String,
    pub name: &'static str,
}

pub(crate) struct World {
    pub users: Vec<Persona>,
    /// Indexes into `users` of the people who administer the org.
    pub admins: Vec<usize>,
    pub apps: Vec<App>,
    pub groups: Vec<Group>,
    pub org_id: String,
    pub auth_server_id: String,
    pub workflow_client_id: String,
}

impl World {
    pub(crate) fn new(seed: u64) -> World {
        let mut rng = SplitMix::new(seed ^ 0x0C7A_5EED);
        let users = (0..USER_COUNT)
            .map(|i| {
                let first = FIRST_NAMES[i % FIRST_NAMES.len()];
                let last = LAST_NAMES[(i / FIRST_NAMES.len() + i) % LAST_NAMES.len()];
                let home = rng.below(CITIES.len());
                let city = &CITIES[home];
                Persona {
                    id: rng.okta_id("00u", 20),
                    login: format!(
                        "{}.{}{}@{ORG_DOMAIN}",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        i
                    ),
                    display_name: format!("{first} {last}"),
                    home,
                    agent: rng.below(USER_AGENTS.len()),
                    ip: format!(
                        "{}.{}.{}",
                        city.ip_prefix,
                        rng.below(254) + 1,
                        rng.below(254) + 1
                    ),
                    device_id: rng.okta_id("guo", 20),
                    device_name: format!("{}'s laptop", first),
                }
            })
            .collect();
        let apps = APPS
            .iter()
            .map(|(name, label)| App {
                id: rng.okta_id("0oa", 20),
                name,
                label,
            })
            .collect();
        let groups = GROUPS
            .iter()
            .map(|name| Group {
                id: rng.okta_id("00g", 20),
                name,
            })
            .collect();
        World {
            users,
            admins: (0..ADMIN_COUNT)
                .map(|i| i * (USER_COUNT / ADMIN_COUNT))
                .collect(),
            apps,
            groups,
            org_id: rng.okta_id("00o", 20),
            auth_server_id: rng.okta_id("aus", 20),
            workflow_client_id: rng.okta_id("0oa", 20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_builds_same_org() {
        let a = World::new(9);
        let b = World::new(9);
        assert_eq!(a.users[17].id, b.users[17].id);
        assert_eq!(a.apps[3].id, b.apps[3].id);
        assert_ne!(World::new(10).users[17].id, a.users[17].id);
    }

    #[test]
    fn users_have_unique_logins_and_valid_home_cities() {
        let w = World::new(1);
        let logins: std::collections::HashSet<_> = w.users.iter().map(|u| &u.login).collect();
        assert_eq!(logins.len(), w.users.len());
        assert!(w.users.iter().all(|u| u.home < CITIES.len()));
        assert!(w.admins.iter().all(|&a| a < w.users.len()));
    }
}
