/*
 * PowerShell download cradles (fetch a script from the network and run it in memory)
 * and encoded command lines (-EncodedCommand and its accepted abbreviations).
 */
rule SECOPS_PowerShell_Download_Cradle
{
    meta:
        severity = "critical"
        description = "PowerShell download cradle: downloads and runs code"
    strings:
        // All parts of a cradle must sit on one line: scattered words in a large
        // binary or a manual are not a cradle.
        $c1 = /new-object\s+(system\.)?net\.webclient[^\r\n]{0,200}\.download(string|data|file)\s*\(/ nocase
        $c2 = /\b(iex|invoke-expression)\b[^\r\n]{0,200}\.download(string|data)\s*\(/ nocase
        $c3 = /\b(iwr|irm|invoke-webrequest|invoke-restmethod)\b[^\r\n|]{1,300}\|\s*(iex|invoke-expression)\b/ nocase
        $c4 = /\.download(string|data)\s*\([^\r\n]{1,300}\|\s*(iex|invoke-expression)\b/ nocase
    condition:
        any of them
}

rule SECOPS_PowerShell_Encoded_Command
{
    meta:
        severity = "high"
        description = "PowerShell started with a base64-encoded command"
    strings:
        $enc = /powershell(\.exe)?["']?\s[^\r\n]{0,200}\s[-\/]e(c|n|nc|nco|ncod|ncode|ncoded|ncodedc|ncodedco|ncodedcom|ncodedcomm|ncodedcomma|ncodedcommand)?\s+["']?[A-Za-z0-9+\/]{24,}/ nocase
    condition:
        $enc
}

/*
 * Engine hints, not findings. SECOPS_Hint_PowerShell: a word that runs code (or an
 * obfuscation mark) together with a word that fetches, or heavy obfuscation alone, in
 * ASCII or UTF-16LE; objects it matches get the normalising cradle check
 * (secops/scanning/powershell.py). SECOPS_Hint_PowerShell_Encoded: an -EncodedCommand
 * option or one of its abbreviations; objects it matches get their payloads decoded.
 */
rule SECOPS_Hint_PowerShell
{
    meta:
        severity = "info"
        description = "engine hint: PowerShell words to normalise"
        hint = "powershell"
    strings:
        $x1 = "iex" nocase ascii wide
        $x2 = "invoke-expression" nocase ascii wide
        $x3 = "scriptblock" nocase ascii wide
        $x4 = "shellid[" nocase ascii wide
        $x5 = "pshome[" nocase ascii wide
        $x6 = "comspec[" nocase ascii wide
        $x7 = "mdr*" nocase ascii wide
        $x8 = "-join" nocase ascii wide
        $x9 = "start-process" nocase ascii wide
        $x10 = "saps " nocase ascii wide
        $x11 = "invoke-item" nocase ascii wide
        $d1 = "download" nocase ascii wide
        $d2 = "webclient" nocase ascii wide
        $d3 = "new-object" nocase ascii wide
        $d4 = "iwr " nocase ascii wide
        $d5 = "irm " nocase ascii wide
        $d6 = "curl " nocase ascii wide
        $d7 = "wget " nocase ascii wide
        $d8 = "invoke-webrequest" nocase ascii wide
        $d9 = "invoke-restmethod" nocase ascii wide
        $d10 = "bitstransfer" nocase ascii wide
        $d11 = "openread" nocase ascii wide
        $d12 = "-outfile" nocase ascii wide
        $o1 = /[A-Za-z]`[A-Za-z]/ ascii wide
        $o2 = /['"] {0,3}\+ {0,3}['"]/ ascii wide
        $o3 = /['"] {0,3}-f {0,3}['"]/ nocase ascii wide
    condition:
        ((any of ($x*) or any of ($o*)) and any of ($d*)) or (#o1 + #o2 + #o3) >= 3
}

rule SECOPS_Hint_PowerShell_Encoded
{
    meta:
        severity = "info"
        description = "engine hint: an -EncodedCommand option to decode"
        hint = "psencoded"
    strings:
        // -EncodedCommand and its abbreviations (-e, -ec, -en, -enc...), with - or /
        $e1 = "-e " nocase ascii wide
        $e2 = "-ec " nocase ascii wide
        $e3 = "-en" nocase ascii wide
        $e4 = "/e " nocase ascii wide
        $e5 = "/ec " nocase ascii wide
        $e6 = "/en" nocase ascii wide
        $e7 = "-e\t" nocase ascii wide
    condition:
        any of them
}
