"""Reference data seeded by the first database migration.

FROZEN: this module is imported by the first Alembic migration. Editing an
entry here would make databases that already ran that migration disagree with
new ones. Add, rename or retire codes only through a later migration (with its
own seed module). Literals only, no logic.

Codes are stable identifiers (UPPER_SNAKE_CASE ASCII; outcome codes are the
lower-case values of the API contract). Names are Indonesian, using the
official term where there is one. Descriptions are English notes for
developers and are not shown to the people being referred.

Sources for names: Permensos 7/2021 tentang Asistensi Rehabilitasi Sosial
(ATENSI and its seven service components), Kemensos' 12 Pemerlu Atensi Sosial
(12-PAS), the 26 PPKS categories of Permensos 5/2019, UU 31/2014 on witness and
victim protection (LPSK), KemenHAM's list of groups needing state attention
(January 2025), and Kemensos/LPSK/KemenHAM press releases for unit names.
"""

AGENCIES = (
    {"code": "KEMENSOS", "name": "Kementerian Sosial"},
    {"code": "LPSK", "name": "Lembaga Perlindungan Saksi dan Korban"},
    {"code": "KEMENHAM", "name": "Kementerian Hak Asasi Manusia"},
)

# The 12 Pemerlu Atensi Sosial (12-PAS): Kemensos' simplification of the 26
# Pemerlu Pelayanan Kesejahteraan Sosial (PPKS) categories, served by ATENSI.
GROUPS = (
    {
        "code": "ANAK_RENTAN",
        "name": "Anak rentan",
        "description": (
            "Vulnerable children: neglected toddlers and children, children in conflict "
            "with the law, street children, children with disabilities, child victims of "
            "violence, and children in need of special protection (anak yang memerlukan "
            "perlindungan khusus)."
        ),
    },
    {
        "code": "DISABILITAS",
        "name": "Penyandang disabilitas",
        "description": "Persons with physical, intellectual, mental and/or sensory disabilities.",
    },
    {
        "code": "LANSIA_TERLANTAR",
        "name": "Lanjut usia terlantar",
        "description": "Neglected older persons (aged 60 or over) unable to meet basic needs.",
    },
    {
        "code": "BERPENDAPATAN_RENDAH",
        "name": "Masyarakat berpendapatan rendah",
        "description": (
            "Low-income people, including homeless people, beggars, scavengers and "
            "informal workers (gelandangan, pengemis, pemulung)."
        ),
    },
    {
        "code": "KORBAN_BENCANA",
        "name": "Korban bencana",
        "description": "Victims of natural and social disasters (korban bencana alam dan sosial).",
    },
    {
        "code": "AFIRMASI_KHUSUS",
        "name": "Pemerlu afirmasi khusus",
        "description": (
            "People needing special affirmative measures, notably remote indigenous "
            "communities (Komunitas Adat Terpencil)."
        ),
    },
    {
        "code": "WARGA_BINAAN",
        "name": "Warga binaan pemasyarakatan",
        "description": (
            "Prison inmates and former inmates (bekas warga binaan pemasyarakatan) "
            "facing difficulty reintegrating."
        ),
    },
    {
        "code": "KORBAN_KEKERASAN",
        "name": "Korban tindak kekerasan",
        "description": (
            "Victims of violence, exploitation and trafficking in persons (korban "
            "tindak kekerasan, korban perdagangan orang)."
        ),
    },
    {
        "code": "NAPZA_HIV",
        "name": "Korban penyalahgunaan NAPZA dan orang dengan HIV/AIDS (ODHA)",
        "description": (
            "Victims of narcotics, psychotropics and other addictive substance abuse, and "
            "people living with HIV/AIDS."
        ),
    },
    {
        "code": "BERMASALAH_SOSIAL",
        "name": "Masyarakat bermasalah sosial",
        "description": (
            "People with social problems, e.g. families with social-psychological "
            "problems, sex workers, minority groups, and migrant workers with social "
            "problems (pekerja migran bermasalah sosial)."
        ),
    },
    {
        "code": "PEREMPUAN_RENTAN",
        "name": "Perempuan rentan",
        "description": (
            "Vulnerable women, including socio-economically vulnerable women (perempuan "
            "rawan sosial ekonomi)."
        ),
    },
    {
        "code": "FAKIR_MISKIN",
        "name": "Fakir miskin",
        "description": "The destitute: people without a livelihood or unable to meet basic needs.",
    },
)

# KemenHAM's mapped vulnerable groups (drawn from the 27 groups the Minister of
# Human Rights handed to Kemensos in January 2025, plus human-rights defenders).
# Codes are deliberately distinct from GROUPS codes.
KEMENHAM_GROUPS = (
    {
        "code": "SAKSI_KORBAN_PELANGGARAN_HAM",
        "name": "Saksi dan korban pelanggaran HAM",
        "description": "Witnesses and victims of human-rights violations.",
    },
    {
        "code": "KORBAN_PELANGGARAN_HAM_BERAT_MASA_LALU",
        "name": "Korban pelanggaran HAM yang berat masa lalu",
        "description": "Victims (and their families) of past gross human-rights violations.",
    },
    {
        "code": "MASYARAKAT_DAERAH_KONFLIK",
        "name": "Masyarakat di wilayah konflik",
        "description": "People living in conflict areas.",
    },
    {
        "code": "PENGUNGSI",
        "name": "Pengungsi",
        "description": "Refugees and internally displaced persons.",
    },
    {
        "code": "PEKERJA_MIGRAN",
        "name": "Pekerja migran",
        "description": "Migrant workers (Pekerja Migran Indonesia) and their families.",
    },
    {
        "code": "MASYARAKAT_ADAT",
        "name": "Masyarakat adat",
        "description": "Indigenous peoples (masyarakat hukum adat).",
    },
    {
        "code": "PEKERJA_RUMAH_TANGGA",
        "name": "Pekerja rumah tangga",
        "description": "Domestic workers.",
    },
    {
        "code": "PEKERJA_ANAK",
        "name": "Pekerja anak",
        "description": "Child workers (pekerja di bawah umur).",
    },
    {
        "code": "PEMBELA_HAM",
        "name": "Pembela hak asasi manusia",
        "description": "Human-rights defenders.",
    },
    {
        "code": "KELOMPOK_MINORITAS_AGAMA",
        "name": "Kelompok minoritas agama dan kepercayaan",
        "description": "Religious and belief minorities.",
    },
    {
        "code": "MASYARAKAT_MISKIN_KOTA",
        "name": "Masyarakat miskin kota",
        "description": "The urban poor.",
    },
    {
        "code": "PETANI",
        "name": "Petani",
        "description": "Small farmers.",
    },
    {
        "code": "NELAYAN",
        "name": "Nelayan",
        "description": "Small-scale fishers.",
    },
)

# Case types a referral can concern. LPSK's priority cases follow UU 31/2014
# Pasal 5 ayat (2).
CASE_TYPES = (
    {"code": "TPPO", "name": "Tindak Pidana Perdagangan Orang"},
    {"code": "TERORISME", "name": "Tindak Pidana Terorisme"},
    {"code": "KEKERASAN_FISIK", "name": "Kekerasan fisik"},
    {"code": "KEKERASAN_PSIKIS", "name": "Kekerasan psikis"},
    {"code": "KEKERASAN_SEKSUAL", "name": "Tindak Pidana Kekerasan Seksual"},
    {"code": "KEKERASAN_TERHADAP_ANAK", "name": "Kekerasan terhadap anak"},
    {"code": "KDRT", "name": "Kekerasan dalam rumah tangga"},
    {"code": "PELANGGARAN_HAM_BERAT", "name": "Pelanggaran hak asasi manusia yang berat"},
    {"code": "PENYIKSAAN", "name": "Penyiksaan"},
    {"code": "PENGANIAYAAN_BERAT", "name": "Penganiayaan berat"},
    {"code": "KONFLIK_SOSIAL", "name": "Konflik sosial"},
    {"code": "KORUPSI", "name": "Tindak Pidana Korupsi"},
    {"code": "PENCUCIAN_UANG", "name": "Tindak Pidana Pencucian Uang"},
    {"code": "NARKOTIKA", "name": "Tindak pidana narkotika dan psikotropika"},
    {"code": "PENELANTARAN", "name": "Penelantaran"},
    {"code": "EKSPLOITASI", "name": "Eksploitasi ekonomi dan/atau seksual"},
)

# Services, each in exactly one phase: "rehabilitation" (medical, social and
# psychosocial recovery, protection and restoration of rights) or
# "empowerment" (education, vocational training, economic empowerment,
# accessibility). The seven ATENSI components are split across both phases.
SERVICE_TYPES = (
    # --- ATENSI components (Kemensos) -------------------------------------
    {
        "code": "PEMENUHAN_HIDUP_LAYAK",
        "name": "Dukungan pemenuhan kebutuhan hidup layak",
        "phase": "rehabilitation",
    },
    {
        "code": "PERAWATAN_SOSIAL",
        "name": "Perawatan sosial dan/atau pengasuhan anak",
        "phase": "rehabilitation",
    },
    {"code": "DUKUNGAN_KELUARGA", "name": "Dukungan keluarga", "phase": "rehabilitation"},
    {
        "code": "TERAPI",
        "name": "Terapi fisik, terapi psikososial, dan terapi mental spiritual",
        "phase": "rehabilitation",
    },
    {
        "code": "BANTUAN_ASISTENSI_SOSIAL",
        "name": "Bantuan sosial dan asistensi sosial",
        "phase": "rehabilitation",
    },
    {
        "code": "PELATIHAN_VOKASIONAL",
        "name": "Pelatihan vokasional",
        "phase": "empowerment",
    },
    {
        "code": "PEMBERDAYAAN_EKONOMI",
        "name": "Pembinaan kewirausahaan dan pemberdayaan ekonomi",
        "phase": "empowerment",
    },
    {"code": "AKSESIBILITAS", "name": "Dukungan aksesibilitas", "phase": "empowerment"},
    # --- general rehabilitation --------------------------------------------
    {"code": "REHABILITASI_MEDIS", "name": "Rehabilitasi medis", "phase": "rehabilitation"},
    {"code": "REHABILITASI_SOSIAL", "name": "Rehabilitasi sosial", "phase": "rehabilitation"},
    {
        "code": "DUKUNGAN_PSIKOSOSIAL",
        "name": "Dukungan dan rehabilitasi psikososial",
        "phase": "rehabilitation",
    },
    # Legal aid restores access to justice; it belongs to recovery, not empowerment.
    {"code": "BANTUAN_HUKUM", "name": "Bantuan dan pendampingan hukum", "phase": "rehabilitation"},
    # --- LPSK (UU 31/2014) -------------------------------------------------
    {
        "code": "PERLINDUNGAN_FISIK",
        "name": "Perlindungan fisik (termasuk penempatan di rumah aman)",
        "phase": "rehabilitation",
    },
    {
        "code": "PEMENUHAN_HAK_PROSEDURAL",
        "name": "Pemenuhan hak prosedural saksi dan korban",
        "phase": "rehabilitation",
    },
    {"code": "BANTUAN_MEDIS", "name": "Bantuan medis", "phase": "rehabilitation"},
    {
        "code": "BANTUAN_PSIKOLOGIS",
        "name": "Bantuan rehabilitasi psikologis",
        "phase": "rehabilitation",
    },
    {"code": "FASILITASI_RESTITUSI", "name": "Fasilitasi restitusi", "phase": "rehabilitation"},
    {"code": "FASILITASI_KOMPENSASI", "name": "Fasilitasi kompensasi", "phase": "rehabilitation"},
    # --- KemenHAM -----------------------------------------------------------
    {
        "code": "PEMULIHAN_HAK_KORBAN",
        "name": "Pemulihan hak korban pelanggaran HAM",
        "phase": "rehabilitation",
    },
    # --- empowerment --------------------------------------------------------
    {
        "code": "PENDIDIKAN",
        "name": "Dukungan pendidikan dan akses sekolah",
        "phase": "empowerment",
    },
)

# Service units. approach: "residential" | "family" | "community".
# Kemensos has 31 Sentra / Sentra Terpadu (UPT of the Directorate General of
# Social Rehabilitation); only those whose current name could be verified are
# listed here. The rest arrive through a later migration.
SERVICE_UNITS = (
    # --- Kemensos: Sentra / Sentra Terpadu (residential) --------------------
    {
        "code": "SENTRA_HANDAYANI",
        "name": "Sentra Handayani",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Jakarta Timur, DKI Jakarta",
    },
    {
        "code": "SENTRA_MULYA_JAYA",
        "name": "Sentra Mulya Jaya",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Jakarta Timur, DKI Jakarta",
    },
    {
        "code": "SENTRA_TERPADU_PANGUDI_LUHUR",
        "name": "Sentra Terpadu Pangudi Luhur",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Bekasi, Jawa Barat",
    },
    {
        "code": "SENTRA_TERPADU_INTEN_SOEWENO",
        "name": "Sentra Terpadu Inten Soeweno",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Cibinong, Kabupaten Bogor, Jawa Barat",
    },
    {
        "code": "SENTRA_WYATA_GUNA",
        "name": "Sentra Wyata Guna",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kota Bandung, Jawa Barat",
    },
    {
        "code": "SENTRA_ABIYOSO",
        "name": "Sentra Abiyoso",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kota Cimahi, Jawa Barat",
    },
    {
        "code": "SENTRA_PHALA_MARTHA",
        "name": "Sentra Phala Martha",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kabupaten Sukabumi, Jawa Barat",
    },
    {
        "code": "SENTRA_ANTASENA",
        "name": "Sentra Antasena",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kabupaten Magelang, Jawa Tengah",
    },
    {
        "code": "SENTRA_TERPADU_KARTINI",
        "name": "Sentra Terpadu Kartini",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kabupaten Temanggung, Jawa Tengah",
    },
    {
        "code": "SENTRA_TERPADU_PROF_DR_SOEHARSO",
        "name": "Sentra Terpadu Prof. Dr. Soeharso",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kota Surakarta, Jawa Tengah",
    },
    {
        "code": "SENTRA_PARAMITA",
        "name": "Sentra Paramita",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Mataram, Nusa Tenggara Barat",
    },
    {
        "code": "SENTRA_EFATA",
        "name": "Sentra Efata",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kupang, Nusa Tenggara Timur",
    },
    {
        "code": "SENTRA_BAHAGIA",
        "name": "Sentra Bahagia",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kota Medan, Sumatera Utara",
    },
    {
        "code": "SENTRA_MEOHAI",
        "name": "Sentra Meohai",
        "agency": "KEMENSOS",
        "approach": "residential",
        "region": "Kota Kendari, Sulawesi Tenggara",
    },
    # --- Kemensos: family- and community-based ATENSI -----------------------
    {
        "code": "ATENSI_KELUARGA",
        "name": "ATENSI berbasis keluarga",
        "agency": "KEMENSOS",
        "approach": "family",
        "region": "Nasional",
    },
    {
        "code": "ATENSI_KOMUNITAS",
        "name": "ATENSI berbasis komunitas / Lembaga Kesejahteraan Sosial (LKS) mitra",
        "agency": "KEMENSOS",
        "approach": "community",
        "region": "Nasional",
    },
    # --- LPSK ---------------------------------------------------------------
    {
        "code": "LPSK_RUMAH_AMAN",
        "name": "Rumah Aman LPSK",
        "agency": "LPSK",
        "approach": "residential",
        "region": "Dirahasiakan",
    },
    {
        "code": "LPSK_LAYANAN_MEDIS_PSIKOLOGIS",
        "name": "Layanan bantuan medis, psikologis dan psikososial LPSK",
        "agency": "LPSK",
        "approach": "community",
        "region": "Nasional",
    },
    {
        "code": "LPSK_PERWAKILAN_YOGYAKARTA",
        "name": "Kantor Perwakilan LPSK Yogyakarta",
        "agency": "LPSK",
        "approach": "community",
        "region": "DI Yogyakarta",
    },
    # --- KemenHAM -----------------------------------------------------------
    {
        "code": "KEMENHAM_PELAYANAN_KOMUNIKASI_MASYARAKAT",
        "name": "Pelayanan Komunikasi Masyarakat (Yankomas)",
        "agency": "KEMENHAM",
        "approach": "community",
        "region": "Nasional",
    },
    {
        "code": "KEMENHAM_KANWIL_SUMATERA_BARAT",
        "name": "Kantor Wilayah Kementerian Hak Asasi Manusia Sumatera Barat",
        "agency": "KEMENHAM",
        "approach": "community",
        "region": "Sumatera Barat",
    },
    {
        "code": "KEMENHAM_KANWIL_KALIMANTAN_TIMUR",
        "name": "Kantor Wilayah Kementerian Hak Asasi Manusia Kalimantan Timur",
        "agency": "KEMENHAM",
        "approach": "community",
        "region": "Kalimantan Timur",
    },
)

# Final outcomes of a referral; the lower-case codes are part of the API contract.
OUTCOMES = (
    {"code": "completed", "name": "Selesai ditangani"},
    {"code": "declined", "name": "Ditolak"},
    {"code": "withdrawn", "name": "Ditarik kembali"},
    {"code": "unreachable", "name": "Tidak dapat dihubungi"},
    {"code": "deceased", "name": "Meninggal dunia"},
    {"code": "referred_onward", "name": "Dirujuk lebih lanjut"},
)

DECLINE_REASONS = (
    {"code": "OUTSIDE_MANDATE", "name": "Di luar kewenangan lembaga"},
    {"code": "NOT_ELIGIBLE", "name": "Tidak memenuhi syarat"},
    {"code": "CAPACITY_FULL", "name": "Kapasitas layanan penuh"},
    {"code": "DUPLICATE", "name": "Rujukan ganda"},
    {"code": "INSUFFICIENT_INFORMATION", "name": "Informasi tidak lengkap"},
    {"code": "CONSENT_ISSUE", "name": "Persetujuan tidak diberikan atau ditarik"},
    {"code": "SERVED_ELSEWHERE", "name": "Sudah dilayani lembaga lain"},
)
