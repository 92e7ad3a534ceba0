# PageFiles.pm: file and command helpers the page tests share
# (008_walredo, 009_page_oracle, 010_page_service, 012_bulk_extension; and
# AuroraCluster.pm): whole files, 8 KiB blocks of relation files (following
# 1 GiB segment files), running a command with its output, and masking pages
# as wal_consistency_checking does (aurora-ctl redo --mask-rmgr).
package PageFiles;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(slurp spew read_block run mask_pages);

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

# Write bytes to a file (replacing it); dies on failure.
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

# The 8 KiB pages in bytes, masked as wal_consistency_checking masks pages of
# resource manager rmgr (aurora-ctl redo --mask-rmgr, for block "SPC/DB/REL/
# FORK/BLOCK"), through the files $file and $file.masked; dies if that fails.
sub mask_pages
{
	my ($rmgr, $block, $bytes, $file) = @_;
	my $ctl      = "$ENV{AURORA_REPO}/storage_service/build/aurora-ctl";
	my $postgres = "$ENV{AURORA_PG_PREFIX}/bin/postgres";
	spew($file, $bytes);
	my ($rc, $out) = run($ctl, 'redo', '--postgres', $postgres, '--mask-rmgr', $rmgr,
		'--block', $block, '-i', $file, '-o', "$file.masked");
	die "masking with rmgr $rmgr failed: $out" if $rc != 0;
	return slurp("$file.masked");
}

1;
