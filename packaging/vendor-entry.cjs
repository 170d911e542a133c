// The heavy libraries, bundled apart from the agent (dist/imprint-vendor.cjs) so that their
// compile cost is paid only by a run that talks to a metadata service or verifies an identity
// document, not by every start.
module.exports = { undici: require('undici'), pkijs: require('pkijs'), asn1js: require('asn1js') };
