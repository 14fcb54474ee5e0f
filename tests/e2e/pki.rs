//! Certificates for the mTLS listener, made fresh per test run with rcgen:
//! a CA, a server certificate for 127.0.0.1, localhost and
//! [`SERVER_NAMES`], and client certificates whose URI SAN is a SPIFFE id,
//! as Istio issues them.

use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// SPIFFE id of the privileged workload in the ambient-waypoint scenario.
pub const ADMIN: &str = "spiffe://cluster.local/ns/default/sa/admin";
/// SPIFFE id of the low-privilege workload in the ambient-waypoint scenario.
pub const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";

/// The external hosts Envoy's certificate also names, so a client may ask
/// for them as its TLS server name (SNI) and verify the answer, as a
/// workload does when the gateway terminates its TLS.
pub const SERVER_NAMES: &[&str] = &["allowed.example", "other.example"];

/// A certificate with its private key, in both PEM (for Envoy) and DER
/// (for rustls).
pub struct Identity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Identity {
    /// The certificate chain for rustls (just the leaf; the peer has the CA).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert_der.clone()]
    }

    /// The private key for rustls.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// The test PKI: one CA and the identities it issued.
pub struct Pki {
    /// The CA certificate, PEM (Envoy's `trusted_ca`).
    pub ca_pem: String,
    /// The CA certificate, DER (the client's trust anchor).
    pub ca_der: CertificateDer<'static>,
    /// Envoy's serving certificate: SANs `127.0.0.1`, `localhost` and
    /// [`SERVER_NAMES`].
    pub server: Identity,
    /// Client certificate with URI SAN [`ADMIN`].
    pub admin: Identity,
    /// Client certificate with URI SAN [`SLEEP`].
    pub sleep: Identity,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    /// The PKI shared by all tests in this process (key generation is the
    /// only slow part, and nothing here is mutable).
    pub fn shared() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(Pki::generate)
    }

    fn generate() -> Pki {
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.distinguished_name.push(DnType::CommonName, "warden e2e test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let server = issue(&issuer, "envoy", server_sans(), ExtendedKeyUsagePurpose::ServerAuth);
        let client = |spiffe: &str| {
            let san = SanType::URI(spiffe.try_into().expect("SPIFFE id is ASCII"));
            issue(&issuer, spiffe, vec![san], ExtendedKeyUsagePurpose::ClientAuth)
        };
        let (admin, sleep) = (client(ADMIN), client(SLEEP));
        Pki { ca_pem: ca_cert.pem(), ca_der: ca_cert.der().clone(), server, admin, sleep, issuer }
    }

    /// A client certificate with these URI and DNS SANs (its common name
    /// the first URI), issued now.
    pub fn identity_with(&self, uris: &[String], dns: &[&str]) -> Identity {
        let mut sans: Vec<SanType> =
            uris.iter().map(|u| SanType::URI(u.as_str().try_into().expect("a URI SAN is ASCII"))).collect();
        sans.extend(dns.iter().map(|d| SanType::DnsName((*d).try_into().expect("a DNS SAN is ASCII"))));
        let common_name = uris.first().map(String::as_str).unwrap_or("anonymous");
        issue(&self.issuer, common_name, sans, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

fn server_sans() -> Vec<SanType> {
    let names = ["localhost"].iter().chain(SERVER_NAMES);
    let dns = names.map(|n| SanType::DnsName((*n).try_into().expect("a server name is a DNS name")));
    std::iter::once(SanType::IpAddress([127, 0, 0, 1].into())).chain(dns).collect()
}

/// Issues an end-entity certificate signed by `issuer`.
fn issue(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
) -> Identity {
    let key = KeyPair::generate().expect("generate a leaf key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf parameters");
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer).expect("sign a leaf certificate");
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}
