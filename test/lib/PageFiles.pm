# PageFiles.pm: file and command helpers the page tests share
# (008_walredo, 009_page_oracle, 010_page_service): whole files, 8 KiB
# blocks of relation files (following 1 GiB segment files), and running a
# command with its output.
package PageFiles;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(slurp spew read_block run);

# A file's bytes, or undef if it cannot be read.
sub slurp
{
	my ($file) = @_;
	open(my $fh, '<:raw', $file) or return undef;
	local $/;
	my $d = <$fh>;
	close($fh);
	return $d // '';
}

sub spew
{
	my ($file, $data) = @_;
	open(my $fh, '>:raw', $file) or die "$file: $!";
	print $fh $data;
	close($fh) or die "$file: $!";
}

# Block blkno of the relation fork whose first segment file is path.
sub read_block
{
	my ($path, $blkno) = @_;
	my $seg = int($blkno / 131072);
	my $file = $seg ? "$path.$seg" : $path;
	open(my $fh, '<:raw', $file) or die "$file: $!";
	seek($fh, ($blkno % 131072) * 8192, 0) or die "seek $file: $!";
	my $n = read($fh, my $page, 8192);
	close($fh);
	die "$file: short read of block $blkno" unless defined $n && $n == 8192;
	return $page;
}

# Run a command (each argument quoted); returns (exit code, stdout+stderr).
sub run
{
	my $cmd = join ' ', map { "'$_'" } @_;
	my $out = `$cmd 2>&1`;
	return ($? >> 8, $out);
}

1;
