// Spellings of the cloud metadata addresses a config or a hostile tree might use; every one
// must be refused by the test guard and never make an offline tree contact the network.
export const METADATA_SPELLINGS = [
  'http://169.254.169.254', 'http://169.254.169.254:80', 'http://169.254.169.254.', 'http://0xa9fea9fe',
  'http://2852039166', 'http://0251.0376.0251.0376', 'http://169.254.43518', 'http://0xa9.0xfe.0xa9.0xfe',
  'http://169.254.169.123', 'http://169.254.42.42', 'http://169.254.0.1:8080', 'http://100.100.100.200',
  'http://[fd00:ec2::254]', 'http://[fd00:ec2:0:0:0:0:0:254]', 'http://[FD00:EC2::254]:80', 'http://[fd00:ec2::1]',
  'http://[::ffff:169.254.169.254]', 'http://[::ffff:a9fe:a9fe]', 'http://[::169.254.169.254]', 'http://[64:ff9b::a9fe:a9fe]',
  'http://[::ffff:100.100.100.200]',
];
