# reads the host's secret (its directory on stdin) and writes outside /work: everything but
# /work is read-only, and the host's files are not there
read dir
cat "$dir/secret.txt" 2>&1 || echo "no secret"
for p in /etc/written_by_sandbox /usr/written_by_sandbox /written_by_sandbox "$dir/written_by_sandbox" /proc/written_by_sandbox; do
  (echo x > "$p") 2>/dev/null && echo "ESCAPED: wrote $p" || echo "cannot write $p"
done
echo x > /work/ok.txt && echo x > /tmp/written_by_sandbox && echo done
