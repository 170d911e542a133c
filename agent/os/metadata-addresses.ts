// The clouds' documented metadata addresses beyond EC2's, as URL host names: Alibaba's,
// Scaleway's, Azure's wireserver, the whole 169.254.169.0/24 (EC2's time service .123 among
// them) and OpenStack's IPv6 link-local form. The test guard in http.ts refuses them all.

const PLATFORM_METADATA_HOST = /^(100\.100\.100\.200|169\.254\.42\.42|168\.63\.129\.16|169\.254\.169\.\d{1,3}|\[fd00:ec2::254\]|\[fd00:a9fe:a9fe::1\]|\[fe80::a9fe:a9fe(%25[^\]]*)?\])$/i;

export function isPlatformMetadataHost(hostname: string): boolean {
  return PLATFORM_METADATA_HOST.test(hostname);
}
